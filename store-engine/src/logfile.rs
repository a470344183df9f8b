//! The `LogFile` and `LogDir` traits: the only IO the log does, with a std::fs backend
//! ([`StdDir`]) and an in-memory reference ([`MemDir`]) that can simulate a crash.
//!
//! The contract is shaped for a completion-based backend (io_uring) too: `append` may
//! only queue the write, and its error may surface at the next `sync_data`; nothing is
//! durable, nor guaranteed readable through another handle, before `sync_data` returns.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One append-only file.
pub trait LogFile: Send + 'static {
    /// Length in bytes, counting appends not yet synced.
    fn len(&self) -> u64;

    /// Returns true when the file holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends all of `data` at the end. Not durable until [`LogFile::sync_data`]; an
    /// implementation may report the write's failure from the next `sync_data` instead.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;

    /// Makes every appended byte durable (fdatasync). After an error the file's state is
    /// unknown: callers must not retry, they stop writing (fsyncgate).
    fn sync_data(&mut self) -> io::Result<()>;

    /// Fills `buf` from `offset`. Errors if the range reaches past [`LogFile::len`].
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

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
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
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
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.path.join(name))?;
        Ok(StdFile { file, len: 0 })
    }
    fn open(&self, name: &str) -> io::Result<StdFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path.join(name))?;
        let len = file.metadata()?.len();
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

#[derive(Debug, Default)]
struct MemFileState {
    data: Vec<u8>,
    /// Bytes that survive a crash.
    synced_len: usize,
}

type MemFiles = BTreeMap<String, Arc<Mutex<MemFileState>>>;

/// The reference backend: files in memory, shared by every clone. [`MemDir::crash`]
/// keeps what was synced and drops the rest, as a power cut would.
#[derive(Clone, Debug, Default)]
pub struct MemDir {
    files: Arc<Mutex<MemFiles>>,
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

    /// A new directory holding what a crash now would leave: each file's synced bytes,
    /// plus the first `torn_bytes` of its unsynced ones (a torn write). Directory
    /// operations are treated as durable at once.
    pub fn crash(&self, torn_bytes: usize) -> MemDir {
        let files = self.files.lock().unwrap();
        let mut out = MemFiles::new();
        for (name, f) in files.iter() {
            let f = f.lock().unwrap();
            let keep = (f.synced_len + torn_bytes).min(f.data.len());
            let state = MemFileState {
                data: f.data[..keep].to_vec(),
                synced_len: keep,
            };
            out.insert(name.clone(), Arc::new(Mutex::new(state)));
        }
        MemDir {
            files: Arc::new(Mutex::new(out)),
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
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
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
