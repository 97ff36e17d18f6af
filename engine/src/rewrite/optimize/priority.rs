//! Running at low priority: `optimize` is background work. Linux keeps nice values and I/O
//! priorities per thread, so every thread of the process is lowered (new threads inherit).

use crate::error::{Error, Result};

/// The I/O scheduling class "idle" (`ioprio_set(2)`): disk time only when no one else wants it.
const IOPRIO_CLASS_IDLE: libc::c_int = 3;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// Sets every thread of this process to nice `nice` (never raising it) and, with `io_idle`,
/// to the idle I/O class.
pub fn lower_priority(nice: i32, io_idle: bool) -> Result<()> {
    let tasks = std::path::Path::new("/proc/self/task");
    let entries = std::fs::read_dir(tasks).map_err(|e| Error::io("read", tasks, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read", tasks, e))?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        lower_thread(tid, nice, io_idle)?;
    }
    Ok(())
}

#[allow(unsafe_code)]
fn lower_thread(tid: u32, nice: i32, io_idle: bool) -> Result<()> {
    // A thread that ended meanwhile (ESRCH) needs nothing.
    let failed = |what: &str| {
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(()),
            _ => Err(Error::Usage(format!(
                "cannot lower the priority of thread {tid} ({what}): {e}"
            ))),
        }
    };
    // SAFETY: plain syscalls on a thread of this process; they read and write no memory.
    unsafe {
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        if *libc::__errno_location() != 0 {
            return failed("getpriority");
        }
        if current < nice && libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0 {
            return failed("setpriority");
        }
        if io_idle {
            let prio = IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT;
            if libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, prio) != 0 {
                return failed("ioprio_set");
            }
        }
    }
    Ok(())
}
