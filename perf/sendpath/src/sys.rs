//! The few syscalls the benchmark needs beyond manifold-udp and manifold-sys (CPU pinning, the
//! open-files limit, thread CPU time, epoll): `SO_RCVBUF` read back and uname.

// The benchmark's syscall module; each block carries a `// SAFETY:` line.
#![allow(unsafe_code, reason = "syscall wrappers")]

use std::io;
use std::mem;
use std::os::fd::RawFd;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Sets `SO_RCVBUF` (the kernel doubles it for bookkeeping and caps it at `rmem_max`) and
/// returns what the kernel actually set.
pub(crate) fn set_rcvbuf(fd: RawFd, bytes: usize) -> io::Result<usize> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value is a valid c_int for the call and its size is passed.
    cvt(unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&raw const value).cast(), len)
    })?;
    let mut got: libc::c_int = 0;
    let mut got_len = len;
    // SAFETY: got and got_len are valid for writes of the sizes passed.
    cvt(unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&raw mut got).cast(), &mut got_len)
    })?;
    Ok(usize::try_from(got).unwrap_or(0))
}

/// `uname -srvm`.
pub(crate) fn uname() -> String {
    // SAFETY: utsname is plain byte arrays.
    let mut u: libc::utsname = unsafe { mem::zeroed() };
    // SAFETY: u is valid for writes.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{} {} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.version),
        field(&u.machine)
    )
}
