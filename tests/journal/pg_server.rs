//! A private PostgreSQL server for a test: `initdb` in a scratch directory,
//! `pg_ctl start` on a free loopback port, stopped when dropped. As root,
//! the server runs as the `postgres` user (PostgreSQL refuses root).
//!
//! `scripts/install-external.sh` installs PostgreSQL. A missing `initdb`
//! fails the test unless `TRACKED_SKIP_EXTERNAL=1`.

use std::path::PathBuf;
use std::process::Command;

pub(crate) struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    pub(crate) port: u16,
    as_postgres: bool,
}

fn find_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut v: Vec<PathBuf> = versions.flatten().map(|e| e.path().join("bin")).collect();
        v.sort();
        dirs.extend(v.into_iter().rev());
    }
    dirs.into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgServer {
    /// Starts a fresh server, or `None` when PostgreSQL is missing and
    /// skipping is allowed.
    pub(crate) fn start(name: &str) -> Option<PgServer> {
        let Some(bin) = find_bin() else {
            if std::env::var("TRACKED_SKIP_EXTERNAL").as_deref() == Ok("1") {
                eprintln!("SKIPPED: PostgreSQL is not installed and TRACKED_SKIP_EXTERNAL=1");
                return None;
            }
            panic!("PostgreSQL (initdb, pg_ctl) is not installed: run scripts/install-external.sh (or set TRACKED_SKIP_EXTERNAL=1 to skip)");
        };
        let dir = std::env::temp_dir().join(format!("tracked-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(&dir));
        }
        let server = PgServer {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = server.data();
        run(server
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "tracked",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data));
        server.up();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Starts (or restarts) the server on its port.
    pub(crate) fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "start"]));
    }

    /// Stops the server at once, as a crash would.
    pub(crate) fn down(&self) {
        run(self.command("pg_ctl").arg("-D").arg(self.data()).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]));
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://tracked@127.0.0.1:{}/postgres", self.port)
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("run a PostgreSQL program");
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
