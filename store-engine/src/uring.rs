//! The io_uring log-file backend: [`UringDir`] and [`UringFile`].
//!
//! `append` only queues a write (the bytes are copied into a buffer the file owns);
//! `sync_data` submits the queued writes and one `IORING_OP_FSYNC` (datasync) marked
//! `IO_DRAIN`, so the fdatasync starts only after every write before it completed, and
//! waits for all of them with a single `io_uring_enter`: one system call per group
//! commit where the std backend makes two (pwrite, fdatasync). Directory operations
//! are the std backend's.
//!
//! This is the only module of the crate with `unsafe`: handing buffer pointers to the
//! kernel. Every buffer stays owned by the file until its completion is reaped, and a
//! file waits for its writes in flight before it closes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;

use io_uring::{IoUring, opcode, squeue, types};

use crate::logfile::{LogDir, LogFile, StdDir};

/// Submission queue entries per file ring: bounds the writes queued between syncs
/// (the writer queues one per group commit).
pub const URING_QUEUE_DEPTH: u32 = 64;
/// `user_data` of the fsync entry; writes use their index in the in-flight list.
const FSYNC_USER_DATA: u64 = u64::MAX;

const _: () = assert!(URING_QUEUE_DEPTH >= 2, "room for a write and the fsync");

/// A directory whose files write through io_uring.
#[derive(Clone, Debug)]
pub struct UringDir {
    std: StdDir,
}

impl UringDir {
    /// Opens `path` (creating it if missing) and checks that the kernel grants a ring.
    pub fn open(path: impl AsRef<std::path::Path>) -> io::Result<UringDir> {
        drop(new_ring()?);
        Ok(UringDir {
            std: StdDir::open(path)?,
        })
    }

    pub fn path(&self) -> &std::path::Path {
        self.std.path()
    }
}

fn new_ring() -> io::Result<IoUring> {
    IoUring::new(URING_QUEUE_DEPTH).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("io_uring is not available (io_uring_setup: {e})"),
        )
    })
}

/// One write handed to the kernel: the buffer must live until its completion.
struct InFlight {
    buf: Vec<u8>,
    offset: u64,
}

/// A file of a [`UringDir`].
pub struct UringFile {
    file: File,
    ring: IoUring,
    /// Length counting queued writes.
    len: u64,
    /// Writes pushed to the submission queue and not yet reaped.
    in_flight: Vec<InFlight>,
}

impl std::fmt::Debug for UringFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringFile")
            .field("len", &self.len)
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl UringFile {
    fn new(file: File, len: u64) -> io::Result<UringFile> {
        Ok(UringFile {
            file,
            ring: new_ring()?,
            len,
            in_flight: Vec::new(),
        })
    }

    /// Pushes one entry, submitting what is queued first if the queue is full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entries pushed here point at buffers owned by `in_flight` (heap
            // memory that does not move when the list grows) or at nothing (fsync), and at
            // `self.file`'s descriptor; both outlive the operation, because nothing drops
            // a buffer or the file before its completion is reaped (`wait_all`, `Drop`).
            let pushed = unsafe { self.ring.submission().push(entry) };
            match pushed {
                Ok(()) => return Ok(()),
                Err(_full) => {
                    self.ring.submit()?;
                }
            }
        }
    }

    /// Submits everything queued and waits until every write (and the fsync, if one is
    /// queued) completed. Short writes are finished with positional writes; returns
    /// whether there was one, and the first error.
    fn wait_all(&mut self, with_fsync: bool) -> io::Result<bool> {
        let want = self.in_flight.len() + usize::from(with_fsync);
        let mut n_done = 0;
        let mut first_error = None;
        let mut short = false;
        while n_done < want {
            if let Err(e) = self.ring.submit_and_wait(want - n_done) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The ring is unusable: nothing more will complete. Keep the buffers
                // (a write may still be running); the file is poisoned for the caller.
                return Err(e);
            }
            let completed: Vec<(u64, i32)> = self
                .ring
                .completion()
                .map(|c| (c.user_data(), c.result()))
                .collect();
            for (user_data, res) in completed {
                n_done += 1;
                if res < 0 {
                    first_error.get_or_insert(io::Error::from_raw_os_error(-res));
                    continue;
                }
                if user_data == FSYNC_USER_DATA {
                    continue;
                }
                let w = &self.in_flight[user_data as usize];
                let written = res as usize;
                if written < w.buf.len() {
                    short = true;
                    let rest = &w.buf[written..];
                    if let Err(e) = self.file.write_all_at(rest, w.offset + written as u64) {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        self.in_flight.clear();
        match first_error {
            Some(e) => Err(e),
            None => Ok(short),
        }
    }
}

impl LogFile for UringFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "append over 4 GiB"))?;
        if self.in_flight.len() + 1 >= URING_QUEUE_DEPTH as usize {
            // Keep one entry free for the fsync.
            self.wait_all(false)?;
        }
        let w = InFlight {
            buf: data.to_vec(),
            offset: self.len,
        };
        let entry = opcode::Write::new(types::Fd(self.file.as_raw_fd()), w.buf.as_ptr(), len)
            .offset(w.offset)
            .build()
            .user_data(self.in_flight.len() as u64);
        self.in_flight.push(w);
        self.push(&entry)?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.wait_all(false).map(drop)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let fsync = opcode::Fsync::new(types::Fd(self.file.as_raw_fd()))
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .flags(squeue::Flags::IO_DRAIN)
            .user_data(FSYNC_USER_DATA);
        self.push(&fsync)?;
        if self.wait_all(true)? {
            // A short write was finished after the fsync may have run.
            self.file.sync_data()?;
        }
        Ok(())
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset + buf.len() as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end",
            ));
        }
        if !self.in_flight.is_empty() {
            self.flush()?;
        }
        self.file.read_exact_at(buf, offset)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        assert!(len <= self.len, "truncate to {len} > {}", self.len);
        self.flush()?;
        self.file.set_len(len)?;
        self.file.sync_all()?;
        self.len = len;
        Ok(())
    }
}

impl Drop for UringFile {
    fn drop(&mut self) {
        if !self.in_flight.is_empty() {
            // The kernel may still read the buffers: wait before freeing them. Errors
            // here have no one to go to; the bytes were never acknowledged.
            let _ = self.wait_all(false);
        }
    }
}

impl LogDir for UringDir {
    type File = UringFile;

    fn list(&self) -> io::Result<Vec<String>> {
        self.std.list()
    }
    fn create(&self, name: &str) -> io::Result<UringFile> {
        let (file, len) = self.std.create_file(name)?;
        UringFile::new(file, len)
    }
    fn open(&self, name: &str) -> io::Result<UringFile> {
        let (file, len) = self.std.open_file(name)?;
        UringFile::new(file, len)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.std.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.std.rename(from, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.std.sync_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends queue, a sync makes them durable and readable, reopen sees them, and
    /// more appends than the queue holds are flushed on the way.
    #[test]
    fn append_sync_read_reopen() {
        let path = std::env::temp_dir().join(format!("bosun-uring-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let dir = UringDir::open(&path).unwrap();
        let mut f = dir.create("a").unwrap();
        let mut want = Vec::new();
        for i in 0..(URING_QUEUE_DEPTH as usize * 3) {
            let chunk = vec![i as u8; 100 + i];
            f.append(&chunk).unwrap();
            want.extend_from_slice(&chunk);
        }
        assert_eq!(f.len(), want.len() as u64);
        f.sync_data().unwrap();
        let mut got = vec![0; want.len()];
        f.read_at(0, &mut got).unwrap();
        assert_eq!(got, want);
        f.append(b"tail").unwrap();
        let mut tail = [0; 4];
        f.read_at(want.len() as u64, &mut tail).unwrap();
        assert_eq!(&tail, b"tail", "a read sees queued appends");
        f.truncate(want.len() as u64).unwrap();
        drop(f);
        let mut f = dir.open("a").unwrap();
        assert_eq!(f.len(), want.len() as u64);
        let mut got = vec![0; want.len()];
        f.read_at(0, &mut got).unwrap();
        assert_eq!(got, want);
        assert!(f.read_at(want.len() as u64 - 1, &mut [0; 2]).is_err());
        std::fs::remove_dir_all(&path).unwrap();
    }
}
