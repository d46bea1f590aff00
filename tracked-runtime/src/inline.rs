//! The future a `#[tracked]` fn's body runs in.
//!
//! On its first poll it decides what the fn is:
//! - the task itself, when a spawn rewritten by the macro started the task
//!   to run exactly this fn (`tokio::spawn(run_round(s))`): it *claims* the
//!   task, which takes the fn's name, type and site, and stays one record;
//! - otherwise a unit of its own (`run_round(s).await`): a record of kind
//!   [`SpawnKind::Inline`], child of the task awaiting it, current while it
//!   is polled, ending `Completed`, `Failed`, `Panicked` or `Cancelled` like
//!   a spawned task.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::instrument::{claim_current, poll_as, Guard};
use crate::outcome::Classify;
use crate::record::SpawnKind;
use crate::{Builder, StaticSite};

enum State {
    /// Not polled yet. The site is needed only to start: a unit's record
    /// and a claimed task's record keep it afterwards.
    Fresh {
        site: &'static StaticSite,
        owner: Option<Arc<str>>,
    },
    /// Claimed the task that polls it; the task's wrapper records the end.
    Task,
    /// Runs as its own unit inside the task that awaits it.
    Unit(Guard),
}

pin_project_lite::pin_project! {
    /// A `#[tracked]` fn's body; `C` tells failures apart.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct TrackedFn<F, C> {
        #[pin]
        future: F,
        state: State,
        classify: PhantomData<fn() -> C>,
    }
}

impl<F, C> TrackedFn<F, C> {
    /// Wraps the body of the fn whose site is `site`.
    pub fn new(
        site: &'static StaticSite,
        owner: Option<Arc<str>>,
        _classify: crate::private::Pick<C>,
        future: F,
    ) -> Self {
        TrackedFn {
            future,
            state: State::Fresh { site, owner },
            classify: PhantomData,
        }
    }
}

impl<F, C> Future for TrackedFn<F, C>
where
    F: Future,
    C: Classify<F::Output>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // The per-poll path is one match; the first poll's registration is
        // out of line so that it does not weigh on every later poll.
        if let &mut State::Fresh {
            site,
            ref mut owner,
        } = this.state
        {
            *this.state = start(site, owner.take());
        }
        match this.state {
            State::Unit(guard) => poll_as::<C, F>(guard, this.future, cx),
            State::Task | State::Fresh { .. } => this.future.poll(cx),
        }
    }
}

#[inline(never)]
fn start(site: &'static StaticSite, owner: Option<Arc<str>>) -> State {
    site.mark_ran();
    match claim_current(site, owner) {
        Ok(()) => State::Task,
        Err(owner) => {
            let mut builder = Builder::new(site.name(), site.ty()).static_site(site);
            if let Some(owner) = owner {
                builder = builder.owner(owner);
            }
            State::Unit(Guard::new(
                builder.register(SpawnKind::Inline, Location::caller()),
            ))
        }
    }
}
