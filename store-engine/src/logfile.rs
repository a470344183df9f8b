//! The `LogFile` and `LogDir` traits: the only IO the log does, with a std::fs backend
//! ([`StdDir`]), an io_uring backend ([`crate::uring::UringDir`]), an in-memory
//! reference ([`MemDir`]) that can simulate a crash, and [`HostDir`], the host backend
//! chosen at run time by a [`LogBackend`].
//!
//! The contract is shaped for a completion-based backend: `append` may only queue the
//! write, and its error may surface at the next `flush` or `sync_data`; nothing survives
//! a process crash before `flush` returns, nor a power cut before `sync_data` returns,
//! nor is it guaranteed readable through another handle before either.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::uring::{UringDir, UringFile};

/// One append-only file.
pub trait LogFile: Send + 'static {
    /// Length in bytes, counting appends not yet synced.
    fn len(&self) -> u64;

    /// Returns true when the file holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends all of `data` at the end. Not durable until [`LogFile::sync_data`]; an
    /// implementation may only queue the write and report its failure from the next
    /// `flush` or `sync_data` instead.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;

    /// Waits until every appended byte reached the operating system: it survives a
    /// crash of this process, not a power cut. After an error, as for `sync_data`.
    /// Backends whose `append` writes before returning need nothing more.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Makes every appended byte durable (fdatasync). After an error the file's state is
    /// unknown: callers must not retry, they stop writing (fsyncgate).
    fn sync_data(&mut self) -> io::Result<()>;

    /// Fills `buf` from `offset`, appended bytes included. Errors if the range reaches
    /// past [`LogFile::len`].
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Shrinks the file to `len` bytes (at most the current length) and makes the new
    /// length durable.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// A flat directory of named files.
pub trait LogDir: Send + Sync + 'static {
    type File: LogFile;

    /// Every file name in the directory, sorted.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates an empty file; fails if `name` exists.
    fn create(&self, name: &str) -> io::Result<Self::File>;
    /// Opens an existing file for reading and appending.
    fn open(&self, name: &str) -> io::Result<Self::File>;
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creations, removals and renames durable (fsync of the directory).
    fn sync_dir(&self) -> io::Result<()>;
}

/// Files in a directory of the host file system.
#[derive(Clone, Debug)]
pub struct StdDir {
    path: PathBuf,
}

impl StdDir {
    /// Opens `path`, creating it if missing.
    pub fn open(path: impl AsRef<Path>) -> io::Result<StdDir> {
        fs::create_dir_all(path.as_ref())?;
        Ok(StdDir {
            path: path.as_ref().to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `name` (failing if it exists) for reading and writing; returns its length.
    pub(crate) fn create_file(&self, name: &str) -> io::Result<(File, u64)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.path.join(name))?;
        Ok((file, 0))
    }

    /// Opens an existing `name` for reading and writing; returns it and its length.
    pub(crate) fn open_file(&self, name: &str) -> io::Result<(File, u64)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path.join(name))?;
        let len = file.metadata()?.len();
        Ok((file, len))
    }
}

/// A file of a [`StdDir`]; tracks its length to append with positional writes.
#[derive(Debug)]
pub struct StdFile {
    file: File,
    len: u64,
}

impl LogFile for StdFile {
    fn len(&self) -> u64 {
        self.len
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, self.len)?;
        self.len += data.len() as u64;
        Ok(())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset + buf.len() as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end",
            ));
        }
        self.file.read_exact_at(buf, offset)
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        assert!(len <= self.len, "truncate to {len} > {}", self.len);
        self.file.set_len(len)?;
        self.file.sync_all()?;
        self.len = len;
        Ok(())
    }
}

impl LogDir for StdDir {
    type File = StdFile;

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
    fn create(&self, name: &str) -> io::Result<StdFile> {
        let (file, len) = self.create_file(name)?;
        Ok(StdFile { file, len })
    }
    fn open(&self, name: &str) -> io::Result<StdFile> {
        let (file, len) = self.open_file(name)?;
        Ok(StdFile { file, len })
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path.join(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path.join(from), self.path.join(to))
    }
    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }
}

/// Which host file backend a [`HostDir`] writes through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogBackend {
    /// `pwrite` + `fdatasync` through std::fs.
    #[default]
    Std,
    /// Writes and the fdatasync submitted together through io_uring.
    IoUring,
}

impl LogBackend {
    /// Every backend, for tests and benches that run each.
    pub const ALL: [LogBackend; 2] = [LogBackend::Std, LogBackend::IoUring];

    pub fn name(self) -> &'static str {
        match self {
            LogBackend::Std => "std",
            LogBackend::IoUring => "io-uring",
        }
    }
}

impl std::str::FromStr for LogBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "std" => Ok(LogBackend::Std),
            "io-uring" | "io_uring" => Ok(LogBackend::IoUring),
            _ => Err(format!("unknown log backend {s:?}: use std or io-uring")),
        }
    }
}

impl std::fmt::Display for LogBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A host directory with the backend chosen at run time.
#[derive(Clone, Debug)]
pub enum HostDir {
    Std(StdDir),
    IoUring(UringDir),
}

/// A file of a [`HostDir`] (the io_uring one boxed: it carries its ring).
#[derive(Debug)]
pub enum HostFile {
    Std(StdFile),
    IoUring(Box<UringFile>),
}

impl HostDir {
    /// Opens `path` (creating it if missing) with `backend`. Errors if the backend is
    /// not available (io_uring refused by the kernel).
    pub fn open(path: impl AsRef<Path>, backend: LogBackend) -> io::Result<HostDir> {
        Ok(match backend {
            LogBackend::Std => HostDir::Std(StdDir::open(path)?),
            LogBackend::IoUring => HostDir::IoUring(UringDir::open(path)?),
        })
    }

    pub fn backend(&self) -> LogBackend {
        match self {
            HostDir::Std(_) => LogBackend::Std,
            HostDir::IoUring(_) => LogBackend::IoUring,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            HostDir::Std(d) => d.path(),
            HostDir::IoUring(d) => d.path(),
        }
    }
}

impl LogDir for HostDir {
    type File = HostFile;

    fn list(&self) -> io::Result<Vec<String>> {
        match self {
            HostDir::Std(d) => d.list(),
            HostDir::IoUring(d) => d.list(),
        }
    }
    fn create(&self, name: &str) -> io::Result<HostFile> {
        Ok(match self {
            HostDir::Std(d) => HostFile::Std(d.create(name)?),
            HostDir::IoUring(d) => HostFile::IoUring(Box::new(d.create(name)?)),
        })
    }
    fn open(&self, name: &str) -> io::Result<HostFile> {
        Ok(match self {
            HostDir::Std(d) => HostFile::Std(d.open(name)?),
            HostDir::IoUring(d) => HostFile::IoUring(Box::new(d.open(name)?)),
        })
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        match self {
            HostDir::Std(d) => d.remove(name),
            HostDir::IoUring(d) => d.remove(name),
        }
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        match self {
            HostDir::Std(d) => d.rename(from, to),
            HostDir::IoUring(d) => d.rename(from, to),
        }
    }
    fn sync_dir(&self) -> io::Result<()> {
        match self {
            HostDir::Std(d) => d.sync_dir(),
            HostDir::IoUring(d) => d.sync_dir(),
        }
    }
}

/// Forwards each [`LogFile`] method to the backend's file.
macro_rules! host_file_forward {
    ($self:ident, $f:ident => $e:expr) => {
        match $self {
            HostFile::Std($f) => $e,
            HostFile::IoUring($f) => $e,
        }
    };
}

impl LogFile for HostFile {
    fn len(&self) -> u64 {
        host_file_forward!(self, f => f.len())
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        host_file_forward!(self, f => f.append(data))
    }
    fn flush(&mut self) -> io::Result<()> {
        host_file_forward!(self, f => f.flush())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        host_file_forward!(self, f => f.sync_data())
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        host_file_forward!(self, f => f.read_at(offset, buf))
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        host_file_forward!(self, f => f.truncate(len))
    }
}

#[derive(Debug, Default)]
struct MemFileState {
    data: Vec<u8>,
    /// Bytes that survive a crash.
    synced_len: usize,
}

type MemFiles = BTreeMap<String, Arc<Mutex<MemFileState>>>;

/// The reference backend: files in memory, shared by every clone. [`MemDir::crash`]
/// keeps what was synced and drops the rest, as a power cut would: file bytes synced by
/// `sync_data`, and names (creates, renames, removes) synced by `sync_dir`.
#[derive(Clone, Debug, Default)]
pub struct MemDir {
    files: Arc<Mutex<MemFiles>>,
    /// The directory as of the last `sync_dir`: what a crash leaves of its names.
    durable: Arc<Mutex<MemFiles>>,
}

/// A file of a [`MemDir`].
#[derive(Debug)]
pub struct MemFile {
    state: Arc<Mutex<MemFileState>>,
}

impl MemDir {
    pub fn new() -> MemDir {
        MemDir::default()
    }

    /// A new directory holding what a crash now would leave: the names as of the last
    /// `sync_dir` (a file created since is gone, one removed or renamed since is back
    /// under its old name), each with its synced bytes plus the first `torn_bytes` of
    /// its unsynced ones (a torn write). Directory operations between two syncs are
    /// kept or lost together: a file system that persisted some of them out of order
    /// is not simulated.
    pub fn crash(&self, torn_bytes: usize) -> MemDir {
        let durable = self.durable.lock().unwrap();
        let mut out = MemFiles::new();
        for (name, f) in durable.iter() {
            let f = f.lock().unwrap();
            let keep = (f.synced_len + torn_bytes).min(f.data.len());
            let state = MemFileState {
                data: f.data[..keep].to_vec(),
                synced_len: keep,
            };
            out.insert(name.clone(), Arc::new(Mutex::new(state)));
        }
        MemDir {
            files: Arc::new(Mutex::new(out.clone())),
            durable: Arc::new(Mutex::new(out)),
        }
    }

    /// Runs `f` on a file's bytes (fault injection in tests).
    pub fn with_file_bytes(&self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let files = self.files.lock().unwrap();
        let mut state = files.get(name).expect("file exists").lock().unwrap();
        f(&mut state.data);
        state.synced_len = state.synced_len.min(state.data.len());
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name}"))
}

impl LogDir for MemDir {
    type File = MemFile;

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.lock().unwrap().keys().cloned().collect())
    }
    fn create(&self, name: &str) -> io::Result<MemFile> {
        let mut files = self.files.lock().unwrap();
        if files.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                name.to_string(),
            ));
        }
        let state = Arc::new(Mutex::new(MemFileState::default()));
        files.insert(name.to_string(), state.clone());
        Ok(MemFile { state })
    }
    fn open(&self, name: &str) -> io::Result<MemFile> {
        let files = self.files.lock().unwrap();
        let state = files.get(name).ok_or_else(|| not_found(name))?.clone();
        Ok(MemFile { state })
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.files
            .lock()
            .unwrap()
            .remove(name)
            .map(drop)
            .ok_or_else(|| not_found(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.files.lock().unwrap();
        let state = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.to_string(), state);
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        let files = self.files.lock().unwrap();
        *self.durable.lock().unwrap() = files.clone();
        Ok(())
    }
}

impl LogFile for MemFile {
    fn len(&self) -> u64 {
        self.state.lock().unwrap().data.len() as u64
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.state.lock().unwrap().data.write_all(data)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = self.state.lock().unwrap();
        s.synced_len = s.data.len();
        Ok(())
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let s = self.state.lock().unwrap();
        let start = offset as usize;
        let src = s.data.get(start..start + buf.len());
        buf.copy_from_slice(
            src.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?,
        );
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.state.lock().unwrap();
        assert!(len as usize <= s.data.len(), "truncate past end");
        s.data.truncate(len as usize);
        s.synced_len = s.data.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &MemDir) -> Vec<String> {
        dir.list().unwrap()
    }

    /// A crash keeps the names of the last `sync_dir` and each file's synced bytes.
    #[test]
    fn a_crash_keeps_what_sync_data_and_sync_dir_made_durable() {
        let dir = MemDir::new();
        let mut a = dir.create("a").unwrap();
        a.append(b"synced").unwrap();
        a.sync_data().unwrap();
        assert!(
            names(&dir.crash(0)).is_empty(),
            "a create is lost until sync_dir"
        );

        dir.sync_dir().unwrap();
        a.append(b"+more").unwrap();
        let after = dir.crash(2);
        assert_eq!(names(&after), ["a"]);
        let mut a2 = after.open("a").unwrap();
        let mut buf = vec![0; a2.len() as usize];
        a2.read_at(0, &mut buf).unwrap();
        assert_eq!(buf, b"synced+m", "synced bytes and a torn 2");

        dir.rename("a", "b").unwrap();
        dir.create("c").unwrap();
        assert_eq!(names(&dir.crash(0)), ["a"], "rename and create undone");
        dir.sync_dir().unwrap();
        assert_eq!(names(&dir.crash(0)), ["b", "c"]);
        dir.remove("b").unwrap();
        assert_eq!(names(&dir.crash(0)), ["b", "c"], "remove undone");
        dir.sync_dir().unwrap();
        assert_eq!(names(&dir.crash(0)), ["c"]);
    }
}
