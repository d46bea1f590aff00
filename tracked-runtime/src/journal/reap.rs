//! The rows a dead process left unfinished. A process that crashes or is
//! killed cannot write how its tasks ended, so their rows would say
//! `running` for good. When a journal starts, a task of its own looks for
//! instances with unfinished rows whose process is known to be gone and
//! marks those rows cancelled, finished when the instance was last seen
//! alive (its last write or beat), with [`REASON`] as their error.
//!
//! On Linux an instance id ends with what tells its process from any other:
//! `service@host#pid.start-ms.ticks.boot.pidns` (the process's start in
//! clock ticks since boot, the kernel's boot id, the pid namespace). A
//! process is known to be gone only from the same host name and pid
//! namespace: when this boot's `/proc` has no such pid, a zombie there, or
//! a process that started at other ticks (the pid was reused); and, for a
//! SQLite file (which one machine uses), when the boot differs (the machine
//! restarted). Nothing else is marked: other hosts, other namespaces, a
//! database shared across machines after a reboot, ids without the key
//! (other systems, older versions), or a `/proc` that hides other users'
//! processes. No wall clock is compared, so a clock step changes nothing.

use std::io::ErrorKind;

use super::schema;
use super::store::Store;
use super::JournalError;

/// The error text of a task whose process ended without recording its end.
pub(crate) const REASON: &str = "the process ended without recording how this task ended";

/// The instance id's end that tells this process from any other on this
/// host, `.ticks.boot.pidns`, or `""` where `/proc` cannot tell.
pub(crate) fn own_key() -> String {
    let key = || {
        let (_, ticks) = stat_fields(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        Some(format!(".{ticks:x}.{}.{:x}", boot()?, pid_namespace()?))
    };
    key().unwrap_or_default()
}

/// Marks the unfinished rows of the dead instances `own` can tell about
/// cancelled; logs what it marked, and what it could not look at.
/// `local`: the database is a file on this machine (SQLite).
pub(crate) async fn reap(store: &dyn Store, own: &str, local: bool) {
    let Some(own) = Instance::parse(own) else {
        return;
    };
    let instances = match store.texts(schema::unfinished_instances()).await {
        Ok(instances) => instances,
        Err(error) => {
            tracing::warn!(%error, "task journal: could not look for tasks of dead processes");
            return;
        }
    };
    for instance in instances {
        let Some(other) = Instance::parse(&instance) else {
            continue;
        };
        if other.gone(&own, local) != Some(true) {
            continue;
        }
        match cancel(store, &instance).await {
            Ok(tasks) => tracing::warn!(
                %instance,
                tasks,
                "task journal: a process ended without recording how its tasks ended; \
                 marked cancelled"
            ),
            Err(error) => tracing::warn!(
                %instance,
                %error,
                "task journal: could not mark the tasks of a dead process cancelled"
            ),
        }
    }
}

/// Marks `instance`'s unfinished rows cancelled; returns how many.
async fn cancel(store: &dyn Store, instance: &str) -> Result<u64, JournalError> {
    let last = store.numbers(schema::last_seen(instance)).await?;
    let last = last.first().copied().unwrap_or_default();
    let marked = store
        .transaction(vec![schema::cancel_unfinished(instance, last, REASON)])
        .await?;
    Ok(marked.first().copied().unwrap_or_default())
}

/// What an instance id says about the process that wrote it.
#[derive(Debug, PartialEq)]
struct Instance<'a> {
    host: &'a str,
    pid: u32,
    ticks: u64,
    boot: &'a str,
    pid_namespace: u64,
}

impl<'a> Instance<'a> {
    /// `service@host#pid.start-ms.ticks.boot.pidns`; `None` for an id
    /// without the key.
    fn parse(id: &'a str) -> Option<Self> {
        let (rest, tail) = id.rsplit_once('#')?;
        let (_, host) = rest.rsplit_once('@')?;
        let parts: Vec<&str> = tail.split('.').collect();
        let [pid, _started, ticks, boot, pid_namespace] = parts.as_slice() else {
            return None;
        };
        Some(Instance {
            host,
            pid: pid.parse().ok()?,
            ticks: u64::from_str_radix(ticks, 16).ok()?,
            boot,
            pid_namespace: u64::from_str_radix(pid_namespace, 16).ok()?,
        })
    }

    /// Whether this instance's process is gone, seen from `own`'s;
    /// `None` when that cannot be told from here.
    fn gone(&self, own: &Instance<'_>, local: bool) -> Option<bool> {
        if self.host != own.host || self.pid_namespace != own.pid_namespace {
            return None;
        }
        if self.boot != own.boot {
            // One file, one machine: it restarted. A shared database may
            // hold another machine of the same name.
            return local.then_some(true);
        }
        if self.ticks == own.ticks && self.pid == own.pid {
            return Some(false);
        }
        if pids_hidden() {
            return None;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => {
                let (state, ticks) = stat_fields(&stat)?;
                Some(matches!(state, 'Z' | 'X') || ticks != self.ticks)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Some(true),
            Err(_) => None,
        }
    }
}

/// A process's state and start (clock ticks since boot) from its
/// `/proc/<pid>/stat`: fields 3 and 22, after the command name, which may
/// hold spaces and parentheses.
fn stat_fields(stat: &str) -> Option<(char, u64)> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ticks = fields.nth(18)?.parse().ok()?;
    Some((state, ticks))
}

/// The start of this boot's random id (8 hex digits).
fn boot() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let start: String = id.chars().take_while(char::is_ascii_hexdigit).collect();
    (start.len() == 8).then_some(start)
}

/// This process's pid namespace (`pid:[4026531836]`).
fn pid_namespace() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let link = link.to_str()?;
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Whether `/proc` hides other users' processes (`hidepid=2`, systemd's
/// `ProtectProc=invisible`): a pid missing there may be alive.
fn pids_hidden() -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    mounts.lines().any(|line| {
        let mut halves = line.split(" - ");
        let mount_point = halves.next().and_then(|l| l.split(' ').nth(4));
        let options = halves.next().and_then(|l| l.split(' ').nth(2));
        mount_point == Some("/proc")
            && options.is_some_and(|o| {
                o.split(',')
                    .any(|o| matches!(o, "hidepid=2" | "hidepid=invisible"))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_id_names_its_process() {
        assert_eq!(
            Instance::parse("s@x#y@web-1#4242.18c2f3a4b5c.5dc.1b9d2e6c.effffffc"),
            Some(Instance {
                host: "web-1",
                pid: 4242,
                ticks: 0x5dc,
                boot: "1b9d2e6c",
                pid_namespace: 0xeffffffc,
            })
        );
        for without_key in [
            "",
            "svc@host",
            "svc@host#1.ff",
            "svc@host#x.1.2.3.4",
            "svc@host#1.2.3.4",
        ] {
            assert_eq!(Instance::parse(without_key), None, "{without_key}");
        }
    }

    #[test]
    fn a_stat_line_gives_state_and_start() {
        let stat = "77 (a (b) c) S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(stat_fields(stat), Some(('S', 987_654)));
        assert_eq!(stat_fields("77 (x) Z"), None);
    }

    fn at<'a>(own: &Instance<'a>, pid: u32, ticks: u64) -> Instance<'a> {
        Instance {
            host: own.host,
            pid,
            ticks,
            boot: own.boot,
            pid_namespace: own.pid_namespace,
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_alive_and_a_missing_reused_or_other_one_is_not() {
        let own_id = format!("t@host#{}.0{}", std::process::id(), own_key());
        let own = Instance::parse(&own_id).expect("Linux has the key");
        let (pid, ticks) = (own.pid, own.ticks);
        assert_eq!(at(&own, pid, ticks).gone(&own, true), Some(false));
        // Unless /proc hides other users' processes: then nothing is known.
        let known = (!pids_hidden()).then_some(true);
        // This pid, started at other ticks: reused.
        assert_eq!(at(&own, pid, ticks + 1).gone(&own, true), known);
        // Above any pid_max.
        assert_eq!(at(&own, u32::MAX, ticks).gone(&own, true), known);
        // A child that exited and is not waited for yet: a zombie.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let stat = format!("/proc/{}/stat", child.id());
        let zombie = (0..500).find_map(|_| {
            let fields = stat_fields(&std::fs::read_to_string(&stat).ok()?);
            if fields.is_none_or(|(state, _)| state != 'Z') {
                std::thread::sleep(std::time::Duration::from_millis(10));
                return None;
            }
            fields
        });
        let (_, started) = zombie.expect("the child exits");
        assert_eq!(at(&own, child.id(), started).gone(&own, true), known);
        child.wait().unwrap();
        // Another boot: gone for a local file, unknown for a shared database.
        let rebooted = Instance {
            boot: "00000000",
            ..at(&own, pid, ticks)
        };
        assert_eq!(rebooted.gone(&own, true), Some(true));
        assert_eq!(rebooted.gone(&own, false), None);
        // Another pid namespace or host: unknown.
        let namespace = own.pid_namespace + 1;
        let contained = Instance {
            pid_namespace: namespace,
            ..at(&own, u32::MAX, ticks)
        };
        assert_eq!(contained.gone(&own, true), None);
        let elsewhere = Instance {
            host: "other",
            ..at(&own, u32::MAX, ticks)
        };
        assert_eq!(elsewhere.gone(&own, true), None);
    }
}
