//! Writes the result files of a set of runs: JSON, JUnit, one pcap per link, the HTML page.
//! The CLI's `--json/--junit/--pcap/--html` and the test suite's failure folder both use it.
//!
//! A result file is whole or absent. [`Outputs::check`] proves, before any lab is built, that
//! each can be created: its folder exists and takes a new file, and the path is not a folder
//! (`--pcap DIR` is a folder, or one its existing parent can take). [`write()`] then writes every
//! file in its own folder, checking each write, the flush and an fsync, and puts them in place
//! only once all of them are complete: after a failure (a full disk) none is, nothing written
//! is left, and the error names the file and the system's reason. While written a file has no
//! name (`O_TMPFILE`), so even a process killed then leaves nothing; it is linked under a
//! temporary name beside its destination (`.NAME.PID-N.tmp`) and renamed over it. Where the
//! file system has no unnamed files it is written under such a name from the start. A path
//! that exists and is not a regular file (`/dev/stdout`, a FIFO) cannot be replaced: it is
//! written in place.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::model::Plan;
use crate::run::RunResult;

/// Why a result file cannot be, or was not, written. Each names the option and the path as
/// given, says why, then what to do; the system's reason is part of the text.
#[derive(Debug, Error)]
pub enum ResultFileError {
    /// Two options name one file.
    #[error("{first} and {second} both name `{}`; give each its own file", path.display())]
    SameFile {
        first: &'static str,
        second: &'static str,
        path: PathBuf,
    },
    /// `--pcap` names something that exists and is not a folder.
    #[error("--pcap `{}`: not a folder; --pcap takes a folder to write one pcap file per link into", dir.display())]
    PcapNotAFolder { dir: PathBuf },
    /// A single file's option names a folder.
    #[error("{flag} `{}`: is a folder; give the name of a file to write", path.display())]
    IsAFolder { flag: &'static str, path: PathBuf },
    /// A symbolic link to nothing: where to write is not clear.
    #[error("{flag} `{}`: a symbolic link to a file that does not exist; give the path it should point to", path.display())]
    DanglingLink { flag: &'static str, path: PathBuf },
    /// The path could not be looked at (or, for a file, followed to the real one).
    #[error("{flag} `{}`: {reason}", path.display())]
    Unreadable {
        flag: &'static str,
        path: PathBuf,
        reason: io::Error,
    },
    /// What should be the file's folder is not a folder.
    #[error("{flag} `{}`: `{}` is not a folder", path.display(), dir.display())]
    FolderNotAFolder {
        flag: &'static str,
        path: PathBuf,
        dir: PathBuf,
    },
    /// The file's folder does not exist.
    #[error("{flag} `{}`: folder `{}` does not exist; create it first, or give a path in a folder that does", path.display(), dir.display())]
    NoFolder {
        flag: &'static str,
        path: PathBuf,
        dir: PathBuf,
    },
    /// The file's folder could not be looked at.
    #[error("{flag} `{}`: folder `{}`: {reason}", path.display(), dir.display())]
    FolderUnreadable {
        flag: &'static str,
        path: PathBuf,
        dir: PathBuf,
        reason: io::Error,
    },
    /// The file's folder takes no new file.
    #[error("{flag} `{}`: cannot create a file in `{}`: {reason}; give a path in a folder you can write to", path.display(), dir.display())]
    FolderReadOnly {
        flag: &'static str,
        path: PathBuf,
        dir: PathBuf,
        reason: io::Error,
    },
    /// Writing the file failed (a full disk), or putting it in place did. `whole`: it was
    /// written under a temporary name, which is gone with it, so no part of it was left.
    #[error("writing `{}`: {reason}{}{}", path.display(), what_to_do(reason), if *whole { " (no part of it was left)" } else { "" })]
    Write {
        path: PathBuf,
        reason: io::Error,
        whole: bool,
    },
}

/// What to do about a write that failed for `reason`, if anything can be said.
fn what_to_do(reason: &io::Error) -> &'static str {
    match reason.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => "; free some space there, or give a path elsewhere",
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => {
            "; give a path in a folder you can write to"
        }
        _ => "",
    }
}

/// Which result files to write, and where.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub pcap: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

impl Outputs {
    /// Every file, in one folder: `DIR/result.json`, `result.junit.xml`, `result.html`, and
    /// the pcaps beside them.
    pub fn all_in(dir: &Path) -> Outputs {
        Outputs {
            json: Some(dir.join("result.json")),
            junit: Some(dir.join("result.junit.xml")),
            pcap: Some(dir.to_path_buf()),
            html: Some(dir.join("result.html")),
        }
    }

    /// Whether `--json -` asks for the JSON on standard output: then nothing else may be
    /// written there.
    pub fn json_to_stdout(&self) -> bool {
        self.json.as_deref() == Some(Path::new("-"))
    }

    /// Whether the runs must keep every flow's packets hop by hop (the HTML draws them, the
    /// JSON lists them).
    pub fn needs_traces(&self) -> bool {
        self.html.is_some() || self.json.is_some()
    }

    /// Whether the runs must keep every frame they capture (for the pcaps).
    pub fn needs_frames(&self) -> bool {
        self.pcap.is_some()
    }

    /// The single files asked for, with the option that names each.
    fn files(&self) -> Vec<(&'static str, &Path)> {
        [
            ("--json", &self.json),
            ("--junit", &self.junit),
            ("--html", &self.html),
        ]
        .into_iter()
        .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
        .filter(|(_, p)| *p != Path::new("-"))
        .collect()
    }

    /// Whether every result file can be created, before anything is built: each file's folder
    /// exists and takes a new file (one is created there and removed), the file is not a
    /// folder, no two options name the same file; `--pcap DIR` is a folder that takes files,
    /// or does not exist yet and its parent takes it.
    ///
    /// # Errors
    /// The first that cannot be, with the option, the path, why, and what to do.
    pub fn check(&self) -> Result<(), ResultFileError> {
        let files = self.files();
        for (i, (flag, p)) in files.iter().enumerate() {
            if let Some((other, _)) = files[..i].iter().find(|(_, q)| q == p) {
                return Err(ResultFileError::SameFile {
                    first: other,
                    second: flag,
                    path: p.to_path_buf(),
                });
            }
            if let Target::Replace { path, .. } = target(flag, p)? {
                takes_files(flag, p, folder(&path))?;
            }
        }
        if let Some(dir) = &self.pcap {
            match fs::metadata(dir) {
                Ok(m) if m.is_dir() => takes_files("--pcap", dir, dir)?,
                Ok(_) => return Err(not_a_folder(dir)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    takes_files("--pcap", dir, folder(dir))?
                }
                Err(reason) => {
                    return Err(ResultFileError::Unreadable {
                        flag: "--pcap",
                        path: dir.clone(),
                        reason,
                    })
                }
            }
        }
        Ok(())
    }

    /// Whether the pcap file of every link of these scenarios (`DIR/SCENARIO-LINK.pcap`) can
    /// be written: none of them is a folder. After [`Outputs::check`], once the scenarios are
    /// known.
    ///
    /// # Errors
    /// The first that cannot, as [`Outputs::check`] says it.
    pub fn check_pcaps(&self, plans: &[Plan]) -> Result<(), ResultFileError> {
        let Some(dir) = &self.pcap else {
            return Ok(());
        };
        for plan in plans {
            for link in &plan.topology.links {
                target("--pcap", &pcap_path(dir, plan, &link.name))?;
            }
        }
        Ok(())
    }
}

fn not_a_folder(dir: &Path) -> ResultFileError {
    ResultFileError::PcapNotAFolder {
        dir: dir.to_path_buf(),
    }
}

/// `DIR/SCENARIO-LINK.pcap`.
fn pcap_path(dir: &Path, plan: &Plan, link: &str) -> PathBuf {
    dir.join(format!("{}-{link}.pcap", plan.name))
}

/// The folder a file is in (`.` for a bare name).
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// How a result file gets written.
#[derive(Debug)]
enum Target {
    /// A regular file or none yet: written beside it under a temporary name, then renamed
    /// over it. `path` is the real one (symbolic links followed, so a link stays a link);
    /// `mode` the existing file's permissions, or 0666 less the umask for a new one.
    Replace { path: PathBuf, mode: u32 },
    /// An existing device, FIFO or socket (`/dev/stdout`): written in place.
    InPlace,
}

fn target(flag: &'static str, path: &Path) -> Result<Target, ResultFileError> {
    let unreadable = |reason| ResultFileError::Unreadable {
        flag,
        path: path.to_path_buf(),
        reason,
    };
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(ResultFileError::IsAFolder {
            flag,
            path: path.to_path_buf(),
        }),
        Ok(m) if m.is_file() => match fs::canonicalize(path) {
            Ok(real) => Ok(Target::Replace {
                path: real,
                mode: m.permissions().mode() & 0o777,
            }),
            Err(e) => Err(unreadable(e)),
        },
        Ok(_) => Ok(Target::InPlace),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(ResultFileError::DanglingLink {
                    flag,
                    path: path.to_path_buf(),
                });
            }
            Ok(Target::Replace {
                path: path.to_path_buf(),
                mode: 0o666,
            })
        }
        Err(e) => Err(unreadable(e)),
    }
}

/// Whether `dir`, where `path` goes, exists and takes a new file: one is created there and
/// removed at once.
fn takes_files(flag: &'static str, path: &Path, dir: &Path) -> Result<(), ResultFileError> {
    let (path, dir) = (path.to_path_buf(), dir.to_path_buf());
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(ResultFileError::FolderNotAFolder { flag, path, dir }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ResultFileError::NoFolder { flag, path, dir })
        }
        Err(reason) => {
            return Err(ResultFileError::FolderUnreadable {
                flag,
                path,
                dir,
                reason,
            })
        }
    }
    match tempfile::Builder::new()
        .prefix(".harness-probe.")
        .tempfile_in(&dir)
    {
        Ok(_) => Ok(()),
        Err(reason) => Err(ResultFileError::FolderReadOnly {
            flag,
            path,
            dir,
            reason,
        }),
    }
}

/// A result file that could not be written: the path given, and the system's reason.
fn failed(path: &Path, reason: io::Error) -> ResultFileError {
    ResultFileError::Write {
        path: path.to_path_buf(),
        reason,
        whole: false,
    }
}

/// The same for a file written under a temporary name, which is gone with its part.
fn failed_whole(path: &Path, reason: io::Error) -> ResultFileError {
    ResultFileError::Write {
        path: path.to_path_buf(),
        reason,
        whole: true,
    }
}

/// Writes through a buffer and hands `out` back once the buffer is flushed: every write's
/// error, the last flush's included, is returned rather than dropped.
fn filled<W: Write>(out: W, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<W> {
    let mut w = BufWriter::with_capacity(1 << 16, out);
    fill(&mut w)?;
    w.into_inner().map_err(io::IntoInnerError::into_error)
}

/// A result file being written, not yet in place.
enum Staged {
    /// An unnamed file in the destination's folder (`O_TMPFILE`): a process killed while
    /// writing it leaves nothing behind. Given a name only at [`Batch::commit`].
    Unnamed(fs::File),
    /// A named temporary file beside the destination, where the file system has no unnamed
    /// files (or `/proc` is not mounted to name one).
    Named(tempfile::NamedTempFile),
}

impl Staged {
    fn file(&self) -> &fs::File {
        match self {
            Staged::Unnamed(f) => f,
            Staged::Named(t) => t.as_file(),
        }
    }
}

/// An unnamed file in `dir` (`open(dir, O_TMPFILE)`), or `None` where that is not to be had.
fn unnamed_in(dir: &Path, mode: u32) -> io::Result<Option<fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    if !Path::new("/proc/self/fd").is_dir() {
        return Ok(None);
    }
    match fs::OpenOptions::new()
        .write(true)
        .mode(mode)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(f) => Ok(Some(f)),
        // No O_TMPFILE in this kernel or file system.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Same as `ln -L /proc/self/fd/N to`: gives an unnamed file a name (open(2) on O_TMPFILE).
fn link_following(from: &str, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(from)?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both are NUL-terminated strings that live across the call, which only reads them.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts the unnamed `file` at `dest`: linked under a temporary name beside it, then renamed
/// over it (a link cannot replace a file).
fn name_unnamed(file: &fs::File, dest: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let from = format!("/proc/self/fd/{}", file.as_raw_fd());
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let pid = std::process::id();
    for attempt in 0..1000 {
        let tmp = folder(dest).join(format!(".{name}.{pid}-{attempt}.tmp"));
        match link_following(&from, &tmp) {
            Ok(()) => {
                return fs::rename(&tmp, dest).inspect_err(|_| {
                    let _ = fs::remove_file(&tmp);
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EEXIST))
}

/// Files written whole but not yet in place, put there together by [`Batch::commit`].
/// Dropped before that, it removes them and leaves the old files as they were.
#[derive(Default)]
struct Batch {
    /// (the file, where it goes, the path as the user gave it)
    staged: Vec<(Staged, PathBuf, PathBuf)>,
    /// Named temporary files only, as where the file system has no unnamed ones (tests).
    named_only: bool,
}

impl Batch {
    /// Writes what `fill` writes for `path` into a file of its folder, complete and on disk,
    /// not yet in place (a device or FIFO: into it, at once).
    fn put(
        &mut self,
        flag: &'static str,
        path: &Path,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), ResultFileError> {
        match target(flag, path)? {
            Target::InPlace => {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| failed(path, e))?;
                filled(f, fill).map_err(|e| failed(path, e))?;
            }
            Target::Replace { path: real, mode } => {
                let dir = folder(&real);
                let unnamed = if self.named_only {
                    None
                } else {
                    unnamed_in(dir, mode).map_err(|e| failed_whole(path, e))?
                };
                let staged = match unnamed {
                    Some(f) => Staged::Unnamed(f),
                    None => {
                        let name = real.file_name().unwrap_or_default().to_string_lossy();
                        let prefix = format!(".{name}.");
                        tempfile::Builder::new()
                            .prefix(&prefix)
                            .suffix(".tmp")
                            .permissions(fs::Permissions::from_mode(mode))
                            .tempfile_in(dir)
                            .map(Staged::Named)
                            .map_err(|e| failed_whole(path, e))?
                    }
                };
                filled(staged.file(), fill)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| failed_whole(path, e))?;
                self.staged.push((staged, real, path.to_path_buf()));
            }
        }
        Ok(())
    }

    /// Puts every file in place.
    fn commit(self) -> Result<(), ResultFileError> {
        for (staged, real, shown) in self.staged {
            match staged {
                Staged::Unnamed(f) => name_unnamed(&f, &real),
                Staged::Named(t) => t.persist(&real).map(drop).map_err(|e| e.error),
            }
            .map_err(|e| failed_whole(&shown, e))?;
        }
        Ok(())
    }
}

/// What one scenario left for the result files: a run judged, or rules that did not load.
#[derive(Clone, Copy)]
pub enum Ran<'a> {
    /// The run, its flows judged.
    Judged(&'a RunResult),
    /// Its rules could not be loaded (`harness gate`): no flow ran, so no verdict, no pcap.
    RulesNotLoaded {
        /// The node whose rules did not load.
        router: &'a str,
        /// Why, every line of it, as the terminal words it.
        error: &'a str,
        /// How long it took to find out.
        seconds: f64,
    },
    /// Not run (`harness gate`: declared broken, or its topology lacks the node `--rules`
    /// names): neither passed nor failed; no verdict, no pcap.
    Skipped {
        /// Why, as the terminal's `skip` line says it.
        reason: &'a str,
    },
}

/// Writes every file `out` names for these runs, each whole or not at all (see the module's
/// documentation); the message names the file that failed and the system's reason.
pub fn write(out: &Outputs, runs: &[(&Plan, &RunResult)]) -> Result<(), ResultFileError> {
    let runs: Vec<(&Plan, Ran)> = runs.iter().map(|(p, r)| (*p, Ran::Judged(r))).collect();
    write_all(out, &runs)
}

/// [`write()`], for scenarios some of which did not get their rules loaded (`harness gate`):
/// those are in the JSON with no verdict and their error, in the JUnit as a testcase that
/// errored, on the page with the error in full; they have no pcap. Scenarios it skipped are
/// in the JSON with no verdict and `skipped`, in the JUnit as a suite of one `<skipped>`
/// testcase, last on the page with a `skipped` badge; they have no pcap either.
pub fn write_all(out: &Outputs, runs: &[(&Plan, Ran)]) -> Result<(), ResultFileError> {
    let mut made = None;
    let result = write_batch(out, runs, &mut made);
    if let (Err(_), Some(dir)) = (&result, made) {
        // The folder this call made holds nothing now: no trace of a failed write.
        let _ = fs::remove_dir(dir);
    }
    result
}

fn write_batch<'a>(
    out: &'a Outputs,
    runs: &[(&Plan, Ran)],
    made: &mut Option<&'a Path>,
) -> Result<(), ResultFileError> {
    use super::results::{Judged, Judgement};
    let mut batch = Batch::default();
    if let Some(dir) = &out.pcap {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(not_a_folder(dir)),
            Err(_) => {
                fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
                *made = Some(dir);
            }
        }
        for (plan, ran) in runs {
            let Ran::Judged(r) = ran else { continue };
            for (i, link) in plan.topology.links.iter().enumerate() {
                batch.put("--pcap", &pcap_path(dir, plan, &link.name), |w| {
                    super::pcap::write(w, &r.frames, i, r.capture_started).map(drop)
                })?;
            }
        }
    }
    let files: Vec<String> = runs
        .iter()
        .map(|(p, _)| p.file.display().to_string())
        .collect();
    let all: Vec<Judged> = runs
        .iter()
        .zip(&files)
        .map(|((plan, ran), file)| match ran {
            Ran::Judged(r) => Judged {
                file,
                judgement: Judgement::Verdict(&r.verdict),
                seconds: r.timings.total().as_secs_f64(),
                packets_seen: r.observations.sightings.len(),
                conntrack_entries: r.observations.conntrack.len(),
                coverage: r.coverage.as_deref(),
                daemons: &r.daemons,
            },
            Ran::RulesNotLoaded {
                router,
                error,
                seconds,
            } => Judged {
                file,
                judgement: Judgement::RulesNotLoaded {
                    scenario: &plan.name,
                    router,
                    error,
                },
                seconds: *seconds,
                packets_seen: 0,
                conntrack_entries: 0,
                coverage: None,
                daemons: &[],
            },
            Ran::Skipped { reason } => Judged {
                file,
                judgement: Judgement::Skipped {
                    scenario: &plan.name,
                    reason,
                },
                seconds: 0.0,
                packets_seen: 0,
                conntrack_entries: 0,
                coverage: None,
                daemons: &[],
            },
        })
        .collect();
    let pages: Vec<super::html::Scenario> = runs
        .iter()
        .filter_map(|(plan, ran)| match ran {
            Ran::Judged(r) => Some(super::html::Scenario {
                plan,
                verdict: &r.verdict,
                obs: &r.observations,
            }),
            Ran::RulesNotLoaded { .. } | Ran::Skipped { .. } => None,
        })
        .collect();
    let not_loaded: Vec<super::html::NotLoaded> = runs
        .iter()
        .filter_map(|(plan, ran)| match ran {
            Ran::RulesNotLoaded { router, error, .. } => Some(super::html::NotLoaded {
                plan,
                router,
                error,
            }),
            Ran::Judged(_) | Ran::Skipped { .. } => None,
        })
        .collect();
    let skipped: Vec<super::html::Skipped> = runs
        .iter()
        .filter_map(|(plan, ran)| match ran {
            Ran::Skipped { reason } => Some(super::html::Skipped { plan, reason }),
            Ran::Judged(_) | Ran::RulesNotLoaded { .. } => None,
        })
        .collect();
    let mut stdout = None;
    if let Some(p) = &out.json {
        let text = super::results::json(&all);
        if out.json_to_stdout() {
            stdout = Some(text);
        } else {
            batch.put("--json", p, |w| w.write_all(text.as_bytes()))?;
        }
    }
    if let Some(p) = &out.junit {
        let text = super::results::junit(&all);
        batch.put("--junit", p, |w| w.write_all(text.as_bytes()))?;
    }
    if let Some(p) = &out.html {
        let text = super::html::page_gated(&pages, &not_loaded, &skipped);
        batch.put("--html", p, |w| w.write_all(text.as_bytes()))?;
    }
    batch.commit()?;
    if let Some(text) = stdout {
        let mut w = io::stdout().lock();
        w.write_all(text.as_bytes())
            .and_then(|()| w.flush())
            .map_err(|reason| ResultFileError::Write {
                path: PathBuf::from("-"),
                reason,
                whole: false,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("readable")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn enospc() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }

    #[test]
    fn a_folder_that_does_not_exist_is_refused_with_its_name() {
        let out = Outputs {
            html: Some("/nonexistent-dir/x.html".into()),
            ..Default::default()
        };
        let e = out.check().expect_err("no such folder").to_string();
        assert!(
            e.starts_with(
                "--html `/nonexistent-dir/x.html`: folder `/nonexistent-dir` does not exist"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_folder_given_as_a_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Outputs {
            json: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let e = out.check().expect_err("a folder").to_string();
        assert!(e.contains("is a folder; give the name of a file"), "{e}");
    }

    #[test]
    fn a_device_given_to_pcap_is_not_a_folder() {
        let out = Outputs {
            pcap: Some("/dev/full".into()),
            ..Default::default()
        };
        let e = out.check().expect_err("a device").to_string();
        assert!(e.starts_with("--pcap `/dev/full`: not a folder"), "{e}");
    }

    #[test]
    fn a_pcap_folder_yet_to_make_needs_a_parent_that_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Outputs {
            pcap: Some(dir.path().join("new")),
            ..Default::default()
        };
        ok.check().expect("its parent exists");
        assert!(names(dir.path()).is_empty(), "the check leaves nothing");
        let deep = Outputs {
            pcap: Some(dir.path().join("a/b")),
            ..Default::default()
        };
        let e = deep.check().expect_err("`a` does not exist").to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn one_file_for_two_options_is_refused() {
        let out = Outputs {
            json: Some("r.out".into()),
            html: Some("r.out".into()),
            ..Default::default()
        };
        let e = out.check().expect_err("the same file").to_string();
        assert!(e.starts_with("--json and --html both name `r.out`"), "{e}");
    }

    #[test]
    fn a_folder_nobody_may_write_is_refused_and_the_check_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Outputs {
            junit: Some(dir.path().join("r.xml")),
            ..Default::default()
        };
        out.check().expect("writable");
        assert!(names(dir.path()).is_empty(), "the probe is removed");
        // A file where a folder should be: ENOTDIR, with the path.
        fs::write(dir.path().join("f"), "").expect("file");
        let out = Outputs {
            junit: Some(dir.path().join("f/r.xml")),
            ..Default::default()
        };
        let e = out.check().expect_err("not a folder").to_string();
        assert!(e.contains("--junit `") && e.contains("f/r.xml`"), "{e}");
    }

    #[test]
    fn a_write_that_fails_leaves_neither_the_file_nor_a_temporary_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.html");
        let mut batch = Batch::default();
        batch
            .put("--json", &dir.path().join("r.json"), |w| w.write_all(b"{}"))
            .expect("writes");
        let e = batch
            .put("--html", &path, |w| {
                w.write_all(&[b'x'; 100_000])?;
                Err(enospc())
            })
            .expect_err("the disk is full");
        assert!(
            matches!(&e, ResultFileError::Write { whole: true, reason, .. }
                if reason.raw_os_error() == Some(libc::ENOSPC)),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "writing `{}`: No space left on device (os error 28); free some space there, or give a \
                 path elsewhere (no part of it was left)",
                path.display()
            )
        );
        drop(batch);
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn while_written_a_file_has_no_name_so_a_kill_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.html");
        let mut batch = Batch::default();
        batch
            .put("--html", &path, |w| w.write_all(&[b'x'; 100_000]))
            .expect("writes");
        assert!(
            matches!(batch.staged[0].0, Staged::Unnamed(_)),
            "this file system has O_TMPFILE"
        );
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        batch.commit().expect("commit");
        assert_eq!(names(dir.path()), ["r.html"]);
        assert_eq!(fs::read(&path).expect("r.html").len(), 100_000);
    }

    #[test]
    fn without_unnamed_files_a_named_one_is_written_and_removed_on_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (good, bad) = (dir.path().join("r.json"), dir.path().join("r.html"));
        let mut batch = Batch {
            named_only: true,
            ..Default::default()
        };
        batch
            .put("--json", &good, |w| w.write_all(b"{}"))
            .expect("writes");
        assert!(matches!(batch.staged[0].0, Staged::Named(_)));
        let staged = names(dir.path());
        assert!(
            staged.len() == 1 && staged[0].starts_with(".r.json.") && staged[0].ends_with(".tmp"),
            "{staged:?}"
        );
        batch
            .put("--html", &bad, |_| Err(enospc()))
            .expect_err("fails");
        drop(batch);
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        let mut batch = Batch {
            named_only: true,
            ..Default::default()
        };
        batch
            .put("--json", &good, |w| w.write_all(b"{}"))
            .expect("writes");
        batch.commit().expect("commit");
        assert_eq!(names(dir.path()), ["r.json"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.json");
        fs::write(&path, "old").expect("old file");
        let mut batch = Batch::default();
        batch
            .put("--json", &path, |w| {
                w.write_all(b"new, half")?;
                Err(enospc())
            })
            .expect_err("fails");
        drop(batch);
        assert_eq!(fs::read_to_string(&path).expect("kept"), "old");
        assert_eq!(names(dir.path()), ["r.json"]);
    }

    #[test]
    fn files_appear_only_on_commit_whole_with_ordinary_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.xml"));
        let mut batch = Batch::default();
        batch
            .put("--json", &a, |w| w.write_all(&[b'a'; 200_000]))
            .expect("a");
        batch.put("--junit", &b, |w| w.write_all(b"b")).expect("b");
        assert!(!a.exists() && !b.exists(), "nothing in place before commit");
        batch.commit().expect("commit");
        assert_eq!(fs::read(&a).expect("a").len(), 200_000);
        assert_eq!(fs::read_to_string(&b).expect("b"), "b");
        assert_eq!(names(dir.path()), ["a.json", "b.xml"]);
        let mode = fs::metadata(&a).expect("a").permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        assert_ne!(
            mode, 0o600,
            "0666 less the umask, not a temporary file's 0600"
        );
    }

    #[test]
    fn a_symbolic_link_stays_a_link_to_the_new_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (real, link) = (dir.path().join("real.json"), dir.path().join("link.json"));
        fs::write(&real, "old").expect("real");
        std::os::unix::fs::symlink(&real, &link).expect("link");
        let mut batch = Batch::default();
        batch
            .put("--json", &link, |w| w.write_all(b"new"))
            .expect("put");
        batch.commit().expect("commit");
        assert!(fs::symlink_metadata(&link).expect("link").is_symlink());
        assert_eq!(fs::read_to_string(&real).expect("real"), "new");
    }

    #[test]
    fn dev_full_is_written_in_place_and_its_error_named() {
        let mut batch = Batch::default();
        let e = batch
            .put("--html", Path::new("/dev/full"), |w| w.write_all(b"<html>"))
            .expect_err("/dev/full takes nothing")
            .to_string();
        assert_eq!(
            e,
            "writing `/dev/full`: No space left on device (os error 28); free some space there, or \
             give a path elsewhere"
        );
        assert!(batch.staged.is_empty());
    }

    #[test]
    fn write_refuses_a_pcap_folder_that_is_a_file_by_name() {
        let e = write(
            &Outputs {
                pcap: Some("/dev/full".into()),
                ..Default::default()
            },
            &[],
        )
        .expect_err("not a folder")
        .to_string();
        assert!(e.starts_with("--pcap `/dev/full`: not a folder"), "{e}");
    }

    #[test]
    fn write_makes_the_folder_of_all_in_and_leaves_only_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let results = dir.path().join("results/dual-isp");
        write(&Outputs::all_in(&results), &[]).expect("writes");
        assert_eq!(
            names(&results),
            ["result.html", "result.json", "result.junit.xml"]
        );
    }

    #[test]
    fn the_last_buffered_bytes_are_checked_too() {
        // Everything fits the buffer: only the final flush meets the full disk.
        #[derive(Debug)]
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(enospc())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let e = filled(Full, |w| w.write_all(b"small")).expect_err("flush fails");
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    }
}
