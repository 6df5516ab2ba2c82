//! The daemon's Unix socket, with a lifecycle: a live daemon on the path is
//! refused, a stale socket file replaced, group and mode set before `listen`,
//! and the path removed when the listener is dropped.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};
use thiserror::Error;

/// Pending connections the kernel queues for us.
const BACKLOG: i32 = 128;

#[derive(Debug, Error)]
pub enum ListenError {
    #[error(
        "another sstopd is already running on {path} (it accepted a connection); \
         stop it first or choose another --socket"
    )]
    AlreadyRunning { path: PathBuf },
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("socket passed by systemd is unusable: {0}")]
    Activation(String),
}

fn io_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> ListenError + 'p {
    move |source| ListenError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// How to create the socket.
#[derive(Debug, Clone)]
pub struct SocketSpec {
    pub path: PathBuf,
    pub gid: Option<u32>,
    pub mode: u32,
}

/// A listening socket. Removes its path on drop if it created it.
#[derive(Debug)]
pub struct Listener {
    inner: tokio::net::UnixListener,
    /// Path plus (dev, ino) of the file we created; `None` for a socket systemd owns.
    owned_path: Option<(PathBuf, u64, u64)>,
    description: String,
}

impl Listener {
    /// Bind `spec.path`, set group and mode, then listen. Must be called
    /// inside a tokio runtime.
    pub fn bind(spec: &SocketSpec) -> Result<Self, ListenError> {
        let path = spec.path.as_path();
        if let Some(parent) = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && !p.exists())
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io_err("cannot create directory", parent))?;
        }
        clear_stale(path)?;

        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)
            .map_err(io_err("cannot create socket for", path))?;
        let addr = SockAddr::unix(path).map_err(io_err("invalid socket path", path))?;
        socket
            .bind(&addr)
            .map_err(io_err("cannot bind socket", path))?;
        // From here on the file is ours: a guard removes it if a later step fails.
        let guard = RemoveOnDrop(Some(path.to_path_buf()));
        // Group and mode before `listen`, so nobody can connect in between.
        if let Some(gid) = spec.gid {
            std::os::unix::fs::chown(path, None, Some(gid))
                .map_err(io_err("cannot set group of", path))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(spec.mode))
            .map_err(io_err("cannot set mode of", path))?;
        let meta = std::fs::symlink_metadata(path).map_err(io_err("cannot stat", path))?;
        socket
            .listen(BACKLOG)
            .map_err(io_err("cannot listen on", path))?;
        let inner = into_tokio(socket.into()).map_err(io_err("cannot register", path))?;
        let owned = guard.disarm();
        Ok(Listener {
            inner,
            owned_path: owned.map(|p| (p, meta.dev(), meta.ino())),
            description: path.display().to_string(),
        })
    }

    /// Use a listening socket systemd passed (socket activation). Its path
    /// belongs to systemd and is left alone on exit.
    pub fn from_activation(fd: OwnedFd) -> Result<Self, ListenError> {
        let socket = Socket::from(fd);
        let bad = |what: &str| ListenError::Activation(what.to_string());
        match socket.domain() {
            Ok(d) if d == Domain::UNIX => {}
            _ => return Err(bad("not a Unix-domain socket")),
        }
        match socket.r#type() {
            Ok(t) if t == Type::STREAM => {}
            _ => return Err(bad("not a stream socket")),
        }
        if !socket.is_listener().unwrap_or(false) {
            return Err(bad("not listening"));
        }
        let description = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
            .unwrap_or_else(|| "socket from systemd".into());
        let inner = into_tokio(socket.into())
            .map_err(|e| ListenError::Activation(format!("cannot register: {e}")))?;
        Ok(Listener {
            inner,
            owned_path: None,
            description,
        })
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub async fn accept(&self) -> io::Result<tokio::net::UnixStream> {
        self.inner.accept().await.map(|(stream, _)| stream)
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let Some((path, dev, ino)) = &self.owned_path else {
            return;
        };
        // Only remove the file we created, not one that replaced it.
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.dev() == *dev && m.ino() == *ino => {
                if let Err(e) = std::fs::remove_file(path) {
                    tracing::warn!("cannot remove {}: {e}", path.display());
                }
            }
            _ => {}
        }
    }
}

fn into_tokio(listener: std::os::unix::net::UnixListener) -> io::Result<tokio::net::UnixListener> {
    listener.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(listener)
}

/// A socket file on `path`: live daemon → refuse; stale → remove; other file → refuse.
fn clear_stale(path: &Path) -> Result<(), ListenError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("cannot stat", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ListenError::AlreadyRunning {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!("removing stale socket {}", path.display());
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err("cannot remove stale socket", path)(e)),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("cannot probe existing socket", path)(e)),
    }
}

/// Removes a path on drop unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) -> Option<PathBuf> {
        self.0.take()
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, mode: u32) -> SocketSpec {
        SocketSpec {
            path: dir.join("sub/d.sock"),
            gid: None,
            mode,
        }
    }

    #[tokio::test]
    async fn lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), 0o640);
        let l = Listener::bind(&spec).unwrap();
        let meta = std::fs::symlink_metadata(&spec.path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        let parent = std::fs::metadata(spec.path.parent().unwrap()).unwrap();
        assert_eq!(parent.permissions().mode() & 0o777, 0o755);

        // A live listener on the path: a second bind is refused.
        let err = Listener::bind(&spec).unwrap_err();
        assert!(matches!(err, ListenError::AlreadyRunning { .. }), "{err}");
        assert!(
            spec.path.exists(),
            "refused bind must not remove the live socket"
        );

        drop(l);
        assert!(!spec.path.exists(), "socket removed on drop");
    }

    #[tokio::test]
    async fn stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), 0o600);
        std::fs::create_dir_all(spec.path.parent().unwrap()).unwrap();
        // A socket file nobody listens on (a crashed daemon's leftover).
        drop(std::os::unix::net::UnixListener::bind(&spec.path).unwrap());
        assert!(spec.path.exists());
        let _l = Listener::bind(&spec).unwrap();
        std::os::unix::net::UnixStream::connect(&spec.path).unwrap();
    }

    #[tokio::test]
    async fn regular_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), 0o600);
        std::fs::create_dir_all(spec.path.parent().unwrap()).unwrap();
        std::fs::write(&spec.path, b"precious").unwrap();
        let err = Listener::bind(&spec).unwrap_err();
        assert!(matches!(err, ListenError::NotASocket { .. }), "{err}");
        assert_eq!(std::fs::read(&spec.path).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn activation_socket_is_checked_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("act.sock");
        let std_l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let l = Listener::from_activation(OwnedFd::from(std_l)).unwrap();
        assert_eq!(l.description(), path.display().to_string());
        drop(l);
        assert!(path.exists(), "systemd's socket path is not ours to remove");

        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let err = Listener::from_activation(OwnedFd::from(a)).unwrap_err();
        assert!(matches!(err, ListenError::Activation(_)), "{err}");
    }
}
