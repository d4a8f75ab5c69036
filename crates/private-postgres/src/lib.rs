//! A private PostgreSQL cluster started from the binaries on this machine: the demo's database
//! when `DATABASE_URL` is unset, and the test harness's throwaway server.
//!
//! The postmaster runs as a child of a dedicated thread that lives as long as the postmaster.
//! Linux's parent-death signal (set after dropping to the `postgres` user, which initdb and
//! postgres require when we are root) makes PostgreSQL shut down fast if this process dies
//! without stopping it, so no orphan keeps the data folder locked. It listens only on a Unix
//! socket inside its own folder, which only its owner can enter.

pub mod throwaway;

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Unix socket paths are limited to 107 bytes; leave room for `/.s.PGSQL.5432`.
const MAX_SOCKET_DIR_LEN: usize = 90;
/// The port number only names the socket file; nothing listens on TCP.
const SOCKET_PORT: u16 = 5432;

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Trade durability for speed: right for throwaway test clusters, wrong for the demo's data.
    pub durable: bool,
}

/// A running private cluster. Call [`PrivateCluster::stop`] to shut it down cleanly.
pub struct PrivateCluster {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    /// The postmaster we started and must stop; `None` when another process of ours (a running
    /// server, say, while `create-admin` runs) already had it up and we only connect to it.
    owned: Option<Postmaster>,
}

struct Postmaster {
    pid: i32,
    /// Fires when the postmaster exits. In a mutex only so the cluster can live in a static.
    exited: Mutex<mpsc::Receiver<()>>,
}

/// Where the PostgreSQL server binaries are, and whom to run them as.
struct Binaries {
    bin_dir: PathBuf,
    run_as: Option<(u32, u32)>,
}

impl PrivateCluster {
    /// Initialises `data_dir` if it holds no cluster yet, then starts PostgreSQL on it and waits
    /// until it accepts connections.
    pub fn start(data_dir: &Path, options: &ClusterOptions) -> anyhow::Result<Self> {
        let binaries = Binaries::locate()?;
        fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        binaries.hand_over(&data_dir)?;
        if !data_dir.join("PG_VERSION").exists() {
            binaries.initdb(&data_dir, options)?;
        }
        let socket_dir = socket_dir_for(&data_dir);
        if running_postmaster(&data_dir).is_some() && socket_dir.join(".s.PGSQL.5432").exists() {
            return Ok(Self {
                data_dir,
                socket_dir,
                owned: None,
            });
        }
        fs::create_dir_all(&socket_dir)?;
        binaries.hand_over(&socket_dir)?;
        let log_path = data_dir.join("server.log");
        let (pid, exited) =
            binaries.spawn_postmaster(&data_dir, &socket_dir, &log_path, options)?;
        let postmaster = Postmaster {
            pid,
            exited: Mutex::new(exited),
        };
        postmaster.wait_until_ready(&data_dir, &log_path)?;
        Ok(Self {
            data_dir,
            socket_dir,
            owned: Some(postmaster),
        })
    }

    /// Connection options for `database` as the superuser over the private socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(SOCKET_PORT)
            .username("postgres")
            .database(database)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Fast shutdown (disconnects clients, writes a checkpoint) and waits for the postmaster to
    /// exit. A cluster some other process started is left running.
    pub fn stop(self) -> anyhow::Result<()> {
        match self.owned {
            Some(postmaster) => postmaster.stop(),
            None => Ok(()),
        }
    }
}

impl Postmaster {
    fn stop(self) -> anyhow::Result<()> {
        let exited = self
            .exited
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: kill(2) with a pid we spawned and still own (the waiting thread has not reaped
        // it unless `exited` has fired, which we check first).
        if exited.try_recv().is_err() {
            let rc = unsafe { libc::kill(self.pid, libc::SIGINT) };
            if rc != 0 {
                return Err(io::Error::last_os_error()).context("signalling PostgreSQL to stop");
            }
        }
        match exited.recv_timeout(Duration::from_secs(60)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => bail!("PostgreSQL did not stop within 60 s"),
        }
    }

    fn wait_until_ready(&self, data_dir: &Path, log_path: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let pid_file = data_dir.join("postmaster.pid");
        let exited = self
            .exited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if exited.try_recv().is_ok() {
                bail!(
                    "PostgreSQL exited during start-up. Its log ({}) ends with:\n{}",
                    log_path.display(),
                    log_tail(log_path)
                );
            }
            // The postmaster writes its status as the last line of postmaster.pid; "ready" means
            // it accepts connections (this is what `pg_ctl -w` waits for).
            let ready = fs::read_to_string(&pid_file)
                .map(|s| s.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL did not become ready within 60 s; see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The pid of a live, ready postmaster already serving `data_dir`, if there is one.
fn running_postmaster(data_dir: &Path) -> Option<i32> {
    let status = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let mut lines = status.lines();
    let pid: i32 = lines.next()?.trim().parse().ok()?;
    let ready = lines.nth(6).is_some_and(|l| l.trim() == "ready");
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    (ready && alive).then_some(pid)
}

/// The socket goes inside the data folder when the path is short enough, else under /tmp.
fn socket_dir_for(data_dir: &Path) -> PathBuf {
    let inside = data_dir.join("socket");
    if inside.as_os_str().len() <= MAX_SOCKET_DIR_LEN {
        inside
    } else {
        std::env::temp_dir().join(format!("billing-portal-pg-{}", std::process::id()))
    }
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Binaries {
    fn locate() -> anyhow::Result<Self> {
        let bin_dir = find_bin_dir().ok_or_else(|| {
            anyhow::anyhow!(
                "No PostgreSQL server binaries found: looked for `initdb` and `postgres` in \
                 PG_BIN_DIR, on PATH and under /usr/lib/postgresql/*/bin.\n\
                 Install them (Debian/Ubuntu: `apt-get install postgresql`), point PG_BIN_DIR at \
                 the folder that holds them, or set DATABASE_URL to a PostgreSQL you run yourself."
            )
        })?;
        // initdb and postgres refuse to run as root; drop to the `postgres` account then.
        // SAFETY: geteuid has no preconditions.
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_account()?)
        } else {
            None
        };
        Ok(Self { bin_dir, run_as })
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        // A locale PostgreSQL does not know makes initdb fail; C is always there.
        command.env("LC_ALL", "C").env("LANG", "C");
        command
    }

    /// Gives a folder to the account PostgreSQL runs as, readable by nobody else.
    fn hand_over(&self, dir: &Path) -> anyhow::Result<()> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to the postgres account", dir.display()))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        Ok(())
    }

    fn initdb(&self, data_dir: &Path, options: &ClusterOptions) -> anyhow::Result<()> {
        let mut command = self.command("initdb");
        command.arg("-D").arg(data_dir).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        if !options.durable {
            command.arg("--no-sync");
        }
        let output = command.output().context("running initdb")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let hint = if stderr.contains("Permission denied") && self.run_as.is_some() {
                "\nPostgreSQL runs as the `postgres` account here: every folder above DATA_DIR must \
                 be enterable by it (chmod o+x), or choose another DATA_DIR."
            } else {
                ""
            };
            bail!("initdb failed for {}:\n{stderr}{hint}", data_dir.display());
        }
        Ok(())
    }

    fn spawn_postmaster(
        &self,
        data_dir: &Path,
        socket_dir: &Path,
        log_path: &Path,
        options: &ClusterOptions,
    ) -> anyhow::Result<(i32, mpsc::Receiver<()>)> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(log_path, Some(uid), Some(gid))?;
        }
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(data_dir)
            .arg("-k")
            .arg(socket_dir)
            .args(["-p", &SOCKET_PORT.to_string(), "-c", "listen_addresses="])
            .args(["-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: Ctrl-C in the terminal reaches the portal, which drains
            // requests first and then stops PostgreSQL itself.
            .process_group(0);
        if !options.durable {
            command.args(["-c", "fsync=off", "-c", "synchronous_commit=off"]);
            command.args(["-c", "full_page_writes=off"]);
        }
        // SAFETY: prctl is async-signal-safe; this runs in the child between fork and exec, after
        // the uid change (which would otherwise clear the parent-death signal).
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }

        let (pid_tx, pid_rx) = mpsc::channel();
        let (exit_tx, exit_rx) = mpsc::channel();
        // The parent-death signal fires when the *thread* that forked the child ends, so the
        // thread that spawns PostgreSQL waits for it and ends only when it does.
        std::thread::Builder::new()
            .name("postgres-supervisor".into())
            .spawn(move || match command.spawn() {
                Ok(mut child) => {
                    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
                    let _ = pid_tx.send(Ok(pid));
                    let _ = child.wait();
                    let _ = exit_tx.send(());
                }
                Err(e) => {
                    let _ = pid_tx.send(Err(e));
                }
            })
            .context("starting the PostgreSQL supervisor thread")?;
        let pid = pid_rx
            .recv()
            .context("the PostgreSQL supervisor thread ended early")?
            .context("starting postgres")?;
        Ok((pid, exit_rx))
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").map(PathBuf::from) {
        return has_server(&dir).then_some(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    on_path
        .into_iter()
        .chain(versioned.into_iter().map(|(_, dir)| dir))
        .find(|dir| has_server(dir))
        // A symlink on PATH (such as /usr/local/bin/initdb) must resolve to the real folder so
        // postgres finds its share/ and lib/ beside it.
        .map(|dir| {
            dir.join("postgres")
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or(dir)
        })
}

/// The uid and gid of the `postgres` account.
fn postgres_account() -> anyhow::Result<(u32, u32)> {
    let name = CString::new("postgres")?;
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy the two ids out
    // immediately and call it from one place only.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!(
            "Running as root, and PostgreSQL refuses to run as root, but there is no `postgres` \
             account to run it as. Create one (`useradd --system postgres`), run the portal as \
             another user, or set DATABASE_URL."
        );
    }
    // SAFETY: checked non-null above.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok((uid, gid))
}

/// Creates `name` on the server `admin` points at, unless it exists.
pub async fn ensure_database(admin: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin.clone())
        .await
        .context("connecting to PostgreSQL to create the database")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&pool)
            .await?;
    if !exists {
        // Identifiers cannot be bound as parameters; quote it as PostgreSQL does.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let created = sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&pool)
            .await;
        match created {
            Ok(_) => {}
            // Another instance created it in the meantime.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).context("creating the database"),
        }
    }
    pool.close().await;
    Ok(())
}
