//! The raw system calls the limits bench needs and std does not offer: the process's CPU
//! clock, the CPU time of waited-for children, and starting a file's writeback. Each is a
//! plain call that reads no memory but what it is given.

use std::time::Duration;

/// CPU time (user + system) of every thread of this process so far, to the nanosecond.
pub fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        // Linux always has this clock; without it every stage reads 0 and the report says so.
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time (user + system) of the children this process has waited for, to the microsecond.
pub fn children_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    #[allow(unsafe_code)]
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Asks the kernel to start writing `len` bytes of `file` from `from` to disk, without waiting
/// (Linux `sync_file_range`), as cairn's blob writer does every 8 MiB. A failure is ignored:
/// the fsync at the end does the work then.
pub fn start_writeback(file: &std::fs::File, from: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a file descriptor `file` keeps open; it reads no memory.
        #[allow(unsafe_code)]
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                from as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, len);
}
