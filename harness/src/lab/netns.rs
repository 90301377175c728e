//! A network namespace held by a file descriptor.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::thread;

use nix::sched::{setns, unshare, CloneFlags};

/// An anonymous network namespace. It lives as long as this fd (and any socket or child
/// created in it): when the harness exits — normally, by panic, Ctrl-C or `kill -9` — the
/// kernel destroys it with its veths. Nothing is named in /run/netns.
#[derive(Debug, Clone)]
pub struct Netns {
    name: String,
    fd: Arc<OwnedFd>,
}

impl Netns {
    /// Creates a namespace on a short-lived thread (`unshare` moves only that thread), so
    /// the namespace the harness started in is never left.
    pub fn new(name: &str) -> io::Result<Netns> {
        Netns::start(name)?.finish()
    }

    /// Starts creating a namespace; `Pending::finish` waits for it. Several can be under way
    /// at once.
    pub fn start(name: &str) -> io::Result<Pending> {
        let thread = thread::Builder::new().name(format!("mk-{name}")).spawn(
            || -> io::Result<OwnedFd> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                Ok(OwnedFd::from(File::open("/proc/thread-self/ns/net")?))
            },
        )?;
        Ok(Pending {
            name: name.to_string(),
            thread,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Runs `f` on a fresh thread that has entered this namespace. Sockets and netlink
    /// connections `f` opens stay in the namespace after the thread ends.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
        self.spawn("ns", f)?.join().map_err(|_| {
            io::Error::other(format!("thread in namespace `{}` panicked", self.name))
        })?
    }

    /// Starts a long-lived thread in this namespace (captures, servers).
    pub fn spawn<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<thread::JoinHandle<io::Result<T>>> {
        let fd = Arc::clone(&self.fd);
        thread::Builder::new()
            .name(format!("{what}-{}", self.name))
            .spawn(move || -> io::Result<T> {
                setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                Ok(f())
            })
    }
}

/// A namespace being created.
pub struct Pending {
    name: String,
    thread: thread::JoinHandle<io::Result<OwnedFd>>,
}

impl Pending {
    pub fn finish(self) -> io::Result<Netns> {
        let fd = self
            .thread
            .join()
            .map_err(|_| io::Error::other("namespace thread panicked"))??;
        Ok(Netns {
            name: self.name,
            fd: Arc::new(fd),
        })
    }
}

/// Whether this process may create network namespaces (root, or CAP_SYS_ADMIN).
pub fn can_create_netns() -> bool {
    Netns::new("probe").is_ok()
}
