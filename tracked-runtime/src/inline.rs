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

use crate::instrument::{claim_current, poll_as, with_current, Guard};
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
    /// Polled before. A unit's guard holds its task between polls; a fn
    /// that claimed the task polling it has an empty guard, the task's
    /// wrapper recording the end. With one variant for both, a unit's poll
    /// is one check (whether the guard holds its task) and a claimed
    /// task's two.
    Started(Guard),
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
        with_current(|current| {
            if let Some(current) = current {
                current.record.fn_made(site);
            }
        });
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
        // A unit holding its task, the common case, takes one check.
        let unit = match this.state {
            State::Started(guard) if guard.holds_task() => Some(guard),
            state => state.claimed_or_start(),
        };
        poll_as::<C, F>(unit, this.future, cx)
    }
}

impl State {
    /// The guard to poll a fn with that is not a unit holding its task: a
    /// fn on its first poll registers here (`None` if it claims the task
    /// polling it); a claimed task, or a unit that has ended, has none. Its
    /// body, polled again after the end, panics as any finished `async`
    /// block does.
    #[inline]
    fn claimed_or_start(&mut self) -> Option<&mut Guard> {
        if let State::Fresh { site, owner } = self {
            *self = State::Started(start(site, owner.take()));
        }
        match self {
            State::Started(guard) if guard.holds_task() => Some(guard),
            State::Started(_) | State::Fresh { .. } => None,
        }
    }
}

/// Registers a fn on its first poll, out of line so that it does not weigh
/// on every later poll.
#[cold]
#[inline(never)]
fn start(site: &'static StaticSite, owner: Option<Arc<str>>) -> Guard {
    site.mark_ran();
    match claim_current(site, owner) {
        Ok(()) => Guard::empty(),
        Err(owner) => {
            let mut builder = Builder::new(site.name(), site.ty()).static_site(site);
            if let Some(owner) = owner {
                builder = builder.owner(owner);
            }
            let unit = builder.register(SpawnKind::Inline, Location::caller());
            // It runs within the task polling it: asked to stop if the
            // task was (a cancel's scans ask those that start earlier).
            // Registered first, under a shard lock the cancel's scan takes
            // after asking: the scan finds the unit, or the unit the ask.
            if with_current(|enclosing| enclosing.is_some_and(|e| e.record.cancel_requested())) {
                crate::control::ask_unit(&unit.tracker, &unit.record);
            }
            Guard::new(unit)
        }
    }
}
