//! When nf_tables has committed a tool's rules, told by the kernel rather than by the tool's
//! exit.
//!
//! An nf_tables tool (`iptables-restore` on the nf_tables backend, `nft -f`) has its rules in
//! force the moment each batch commits; then it closes its netlink sockets, and each close
//! waits for the commit's cleanup work, which waits out an RCU grace period (about 12 ms on
//! this kind of machine: half of what installing seed 002 took). A [`CommitWatch`] listens to
//! the node's nf_tables notifications: once the kernel has announced as many new generations
//! as the text has batches, the rules are in and the run goes on while the tool finishes
//! exiting; its exit status is still checked before anything is judged.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `nlmsg_type` of the notification the kernel sends when a batch commits.
const NEWGEN: u16 = ((libc::NFNL_SUBSYS_NFTABLES as u16) << 8) | libc::NFT_MSG_NEWGEN as u16;
/// Receive buffer: every object a batch adds is announced too, before its NEWGEN.
const RCVBUF: libc::c_int = 4 << 20;

/// A netlink socket in one node, subscribed to its nf_tables notifications.
pub struct CommitWatch {
    /// `None` only while being dropped.
    fd: Option<OwnedFd>,
    /// Set when the kernel dropped notifications (ENOBUFS): counts can no longer be trusted.
    lost: bool,
    buf: Vec<u8>,
}

/// How waiting for a tool ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel announced the commits: the rules are in force.
    Committed,
    /// The tool exited first (or the notifications were lost): wait for its status.
    Exited,
}

impl CommitWatch {
    /// Opens the watch in the calling thread's namespace.
    pub fn here() -> io::Result<CommitWatch> {
        Ok(CommitWatch {
            fd: Some(subscribe()?),
            lost: false,
            buf: vec![0; 64 << 10],
        })
    }

    /// Reads and forgets every notification received so far (another tool's commits).
    pub fn drain(&mut self) {
        self.read_available();
    }

    /// Waits until the kernel has announced `batches` commits, or until `exited` becomes
    /// readable (its write end is dropped when the tool has exited).
    pub fn wait(&mut self, batches: usize, exited: BorrowedFd<'_>) -> io::Result<Outcome> {
        let mut seen = 0;
        loop {
            if batches == 0 || self.lost {
                return Ok(Outcome::Exited);
            }
            let fd = self.fd.as_ref().expect("open").as_raw_fd();
            let mut fds = [
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: exited.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll(2) on two live fds in an array of the length given.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[0].revents != 0 {
                seen += self.read_available();
                if seen >= batches && !self.lost {
                    return Ok(Outcome::Committed);
                }
            }
            if fds[1].revents != 0 {
                return Ok(Outcome::Exited);
            }
        }
    }

    /// Reads what is queued without blocking; the number of commits announced in it.
    fn read_available(&mut self) -> usize {
        let fd = self.fd.as_ref().expect("open").as_raw_fd();
        let mut commits = 0;
        loop {
            // SAFETY: recv(2) into a live buffer of the length given.
            let n = unsafe {
                libc::recv(
                    fd,
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => return commits,
                    // ENOBUFS (notifications dropped) or anything else: stop trusting counts.
                    _ => {
                        self.lost = true;
                        return commits;
                    }
                }
            }
            commits += count_newgen(&self.buf[..n as usize]);
        }
    }
}

/// Closing a netfilter netlink socket waits for the node's pending commit cleanup (an RCU
/// grace period): done on a thread of its own, off the run's path.
impl Drop for CommitWatch {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            let _ = std::thread::Builder::new()
                .name("nft-watch-close".into())
                .spawn(move || drop(fd));
        }
    }
}

/// A NETLINK_NETFILTER socket in the calling thread's namespace, in the nf_tables group.
fn subscribe() -> io::Result<OwnedFd> {
    // SAFETY: socket(2), setsockopt(2) and bind(2) on an fd owned from creation, with values
    // that live across each call.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let set = |level, opt, v: &libc::c_int| {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                opt,
                (v as *const libc::c_int).cast(),
                size,
            )
        };
        // FORCE needs CAP_NET_ADMIN over the host; without it, as much as rmem_max allows.
        if set(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF) != 0 {
            set(libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
        }
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let alen = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        if libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            alen,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if set(
            libc::SOL_NETLINK,
            libc::NETLINK_ADD_MEMBERSHIP,
            &libc::NFNLGRP_NFTABLES,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

/// The NEWGEN messages in one datagram of netlink messages.
fn count_newgen(mut data: &[u8]) -> usize {
    const HDR: usize = std::mem::size_of::<libc::nlmsghdr>();
    let mut n = 0;
    while data.len() >= HDR {
        let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().expect("2 bytes"));
        if len < HDR || len > data.len() {
            break;
        }
        if kind == NEWGEN {
            n += 1;
        }
        // Messages are aligned to 4 bytes.
        let step = (len + 3) & !3;
        data = &data[step.min(data.len())..];
    }
    n
}

/// How many batches `tool` commits for `text`: iptables-restore (and ip6tables-restore) on
/// nf_tables commits each
/// table at its `COMMIT` line, `nft -f` the whole file at once. A file that changes nothing
/// commits nothing: the wait then ends with the tool.
pub fn batches(kind: crate::model::RuleKind, text: &str) -> usize {
    use crate::model::RuleKind;
    match kind {
        RuleKind::Iptables | RuleKind::Ip6tables => {
            text.lines().filter(|l| l.trim() == "COMMIT").count()
        }
        RuleKind::Nft => usize::from(
            text.lines()
                .map(str::trim)
                .any(|l| !l.is_empty() && !l.starts_with('#')),
        ),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::{batches, count_newgen, NEWGEN};
    use crate::model::RuleKind;

    fn msg(kind: u16, body: usize) -> Vec<u8> {
        let len = 16 + body;
        let mut m = Vec::new();
        m.extend((len as u32).to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend([0u8; 10]);
        m.extend(vec![0u8; body]);
        m.resize((len + 3) & !3, 0);
        m
    }

    #[test]
    fn counts_newgen_among_other_notifications() {
        let newrule = (10u16 << 8) | 6;
        let data = [
            msg(newrule, 37),
            msg(NEWGEN, 24),
            msg(newrule, 3),
            msg(NEWGEN, 24),
        ]
        .concat();
        assert_eq!(count_newgen(&data), 2);
        // A truncated message ends the count where it starts.
        assert_eq!(count_newgen(&data[..data.len() - 4]), 1);
    }

    #[test]
    fn batches_per_tool() {
        let ipt = "*mangle\n-A PREROUTING -j MARK --set-mark 1\nCOMMIT\n*nat\n# COMMIT\nCOMMIT\n";
        assert_eq!(batches(RuleKind::Iptables, ipt), 2);
        assert_eq!(batches(RuleKind::Ip6tables, ipt), 2);
        assert_eq!(batches(RuleKind::Nft, "# nothing\n\n"), 0);
        assert_eq!(batches(RuleKind::Nft, "flush ruleset\ntable ip t {}\n"), 1);
        assert_eq!(batches(RuleKind::Ip, "route add default via 10.0.0.1\n"), 0);
    }
}
