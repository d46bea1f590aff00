//! The rows a dead process left unfinished. A process that crashes or is
//! killed cannot write how its tasks ended, so their rows would say
//! `running` for good. When a journal starts, it looks for instances of
//! its own host with unfinished rows whose process is gone and marks those
//! rows cancelled, finished when the instance was last heard from, with
//! [`REASON`] as their error.
//!
//! An instance id is `service@host#pid.start`: a process of this host is
//! gone when `/proc` has no such pid, or when the process there started
//! after the instance did (the pid was reused). Where `/proc` is missing
//! (not Linux), or for other hosts, nothing is marked: a row is marked only
//! when its process is known to be gone. Processes that share a journal
//! and a host name must share a pid namespace too (two containers with one
//! host name and a shared SQLite file would take each other for gone).

use std::path::Path;

use super::schema;
use super::store::Store;
use super::JournalError;

/// The error text of a task whose process ended without recording its end.
pub(crate) const REASON: &str = "the process ended without recording how this task ended";

/// Marks the unfinished rows of this host's dead instances cancelled; logs
/// what it marked, or why it could not look.
pub(crate) async fn reap(store: &dyn Store, own: &str) {
    let Some(Instance { host, .. }) = parse(own) else {
        return;
    };
    match reap_dead(store, host, own).await {
        Ok(reaped) => {
            for (instance, tasks) in reaped {
                tracing::warn!(
                    %instance,
                    tasks,
                    "task journal: a process ended without recording how its tasks ended; \
                     marked cancelled"
                );
            }
        }
        Err(error) => {
            tracing::warn!(%error, "task journal: could not look for tasks of dead processes");
        }
    }
}

async fn reap_dead(
    store: &dyn Store,
    host: &str,
    own: &str,
) -> Result<Vec<(String, u64)>, JournalError> {
    let mut reaped = Vec::new();
    for instance in store.texts(schema::unfinished_instances()).await? {
        let Some(parsed) = parse(&instance) else {
            continue;
        };
        if instance == own
            || parsed.host != host
            || gone(parsed.pid, parsed.started_ms) != Some(true)
        {
            continue;
        }
        let heard = store.numbers(schema::last_heard(&instance)).await?;
        let last = heard.into_iter().max().unwrap_or_default();
        let marked = store
            .transaction(vec![schema::cancel_unfinished(&instance, last, REASON)])
            .await?;
        reaped.push((instance, marked.first().copied().unwrap_or_default()));
    }
    Ok(reaped)
}

/// The parts of an instance id (`service@host#pid.start-ms-hex`) that say
/// which process wrote it.
#[derive(Debug, PartialEq)]
struct Instance<'a> {
    host: &'a str,
    pid: u32,
    started_ms: u64,
}

fn parse(id: &str) -> Option<Instance<'_>> {
    let (rest, tail) = id.rsplit_once('#')?;
    let (_, host) = rest.rsplit_once('@')?;
    let (pid, started) = tail.split_once('.')?;
    Some(Instance {
        host,
        pid: pid.parse().ok()?,
        started_ms: u64::from_str_radix(started, 16).ok()?,
    })
}

/// Whether the process `pid` of this host, which started an instance at
/// `started_ms`, is gone; `None` when this system cannot tell.
fn gone(pid: u32, started_ms: u64) -> Option<bool> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && Path::new("/proc/self/stat").exists() =>
        {
            return Some(true)
        }
        Err(_) => return None,
    };
    // The boot time has a resolution of a second: a process that started
    // more than two after the instance is another one.
    Some(process_start_ms(&stat)? > started_ms + 2_000)
}

/// A process's start, in ms since the epoch, from its `/proc/<pid>/stat`.
fn process_start_ms(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses; the
    // start time is field 22, in clock ticks (USER_HZ, 100 a second on
    // Linux) since boot.
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let ticks: u64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot * 1_000 + ticks * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_id_names_its_host_pid_and_start() {
        assert_eq!(
            parse("svc@web-1#4242.18c2f3a4b5c"),
            Some(Instance {
                host: "web-1",
                pid: 4242,
                started_ms: 0x18c2f3a4b5c
            })
        );
        assert_eq!(parse("a@b@host#1.ff").map(|i| i.host), Some("host"));
        for bad in [
            "",
            "svc",
            "svc@host",
            "svc@host#x.1",
            "svc@host#1.zz",
            "svc@host#1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_alive_and_a_missing_or_reused_pid_is_gone() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert_eq!(gone(std::process::id(), now), Some(false));
        // This pid, but an instance started long before this process: the
        // pid was reused.
        assert_eq!(gone(std::process::id(), 1_000), Some(true));
        // Above any pid_max.
        assert_eq!(gone(u32::MAX, now), Some(true));
    }
}
