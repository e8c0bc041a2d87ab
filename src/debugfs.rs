// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/pinwb/`: counters, knobs, the pin listing, flush and
//! fault-injection controls. Wired last in module init and removed first at
//! exit, so no callback runs before the device and the filesystem exist or
//! after they are gone.

use crate::{
    defs,
    device::{self, DeviceShared},
    flusher, fs,
    fs_data::FsShared,
    module_parameters,
    policy::{Policy, POLICIES},
    stats::{self, COUNTERS, TUNABLES},
    PINWB_VERSION,
};
use core::fmt;
use kernel::{
    debugfs::Scope,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
    uaccess::UserSliceReader,
};

/// `policy` shows every policy, the current one in brackets.
fn show_policy(p: &Atomic<u32>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let cur = Policy::from_u32(p.load(Relaxed));
    for (i, q) in POLICIES.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        if Some(*q) == cur {
            write!(f, "{sep}[{}]", q.name())?;
        } else {
            write!(f, "{sep}{}", q.name())?;
        }
    }
    writeln!(f)
}

/// Reads a short write into `buf`: `EINVAL` if empty or longer.
fn read_short<'a>(r: &mut UserSliceReader, buf: &'a mut [u8]) -> Result<&'a [u8]> {
    let n = r.len();
    if n == 0 || n > buf.len() {
        return Err(EINVAL);
    }
    r.read_slice(&mut buf[..n])?;
    Ok(&buf[..n])
}

fn set_policy(p: &Atomic<u32>, r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    p.store(Policy::parse(read_short(r, &mut buf)?)? as u32, Relaxed);
    Ok(())
}

fn show_u64(v: &Atomic<u64>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", v.load(Relaxed))
}

/// Sets a numeric knob: a decimal number up to `max`, else `EINVAL`.
fn set_u64(v: &Atomic<u64>, r: &mut UserSliceReader, max: u64) -> Result {
    let mut buf = [0u8; 24];
    v.store(stats::parse_knob(read_short(r, &mut buf)?, max)?, Relaxed);
    Ok(())
}

/// `corrupt_store`: "<inode number> <page index>" flips a bit of that
/// stored page (`ENOENT` if there is none).
fn corrupt_store(fs: &FsShared, r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 48];
    let s = read_short(r, &mut buf)?;
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    let mut words = s.split(|&c| c == b' ').filter(|w| !w.is_empty());
    let (Some(ino), Some(index), None) = (words.next(), words.next(), words.next()) else {
        return Err(EINVAL);
    };
    let ino = stats::parse_knob(ino, u64::MAX)?;
    let index = usize::try_from(stats::parse_knob(index, u64::MAX)?).map_err(|_| EINVAL)?;
    fs::corrupt_store(fs, ino, index)
}

/// What `version` shows.
struct Version;

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pinwb {PINWB_VERSION} abi {}", defs::PINWB_ABI_VERSION)
    }
}

static VERSION: Version = Version;

/// What the debugfs callbacks reach: the device's and the filesystem's
/// shared state.
pub(crate) struct Shared {
    pub(crate) device: Arc<DeviceShared>,
    pub(crate) fs: Arc<FsShared>,
}

/// The debugfs directory; dropping it removes every file.
pub(crate) type Debugfs = Scope<Shared>;

/// Creates `/sys/kernel/debug/pinwb/` and its files.
pub(crate) fn create(shared: Shared) -> impl PinInit<Debugfs> {
    Scope::dir(shared, c"pinwb", |shared, dir| {
        dir.read_only_file(c"version", &VERSION);
        COUNTERS.each(|name, counter| dir.read_only_file(name, counter));
        dir.read_callback_file(c"pins", &shared.device, &|d, f| device::show_pins(d, f));
        let t = &TUNABLES;
        dir.read_write_callback_file(c"io_delay_us", &t.io_delay_us, &show_u64, &|v, r| {
            set_u64(v, r, stats::MAX_IO_DELAY_US)
        });
        dir.read_write_callback_file(
            c"flush_period_ms",
            &t.flush_period_ms,
            &show_u64,
            &|v, r| {
                set_u64(v, r, stats::MAX_FLUSH_PERIOD_MS)?;
                // The new period counts from now, not from the end of the old one.
                flusher::rearm();
                Ok(())
            },
        );
        dir.read_write_callback_file(
            c"wait_timeout_ms",
            &t.wait_timeout_ms,
            &show_u64,
            &|v, r| set_u64(v, r, stats::MAX_WAIT_TIMEOUT_MS),
        );
        dir.read_write_callback_file(
            c"inject_store_errors",
            &t.inject_store_errors,
            &show_u64,
            &|v, r| set_u64(v, r, u64::from(u32::MAX)),
        );
        dir.read_write_callback_file(c"policy", &t.policy, &show_policy, &set_policy);
        dir.write_only_callback_file(c"flush_kick", &(), &|&(), _r: &mut UserSliceReader| {
            flusher::kick();
            Ok(())
        });
        dir.write_only_callback_file(
            c"corrupt_store",
            &shared.fs,
            &|fs, r: &mut UserSliceReader| corrupt_store(fs, r),
        );
        // The limits (module parameters, which 7.3's Rust modules cannot show in sysfs).
        dir.read_callback_file(c"max_pages_per_pin", &(), &|&(), f| {
            writeln!(f, "{}", module_parameters::max_pages_per_pin.value())
        });
        dir.read_callback_file(c"max_pins_per_file", &(), &|&(), f| {
            writeln!(f, "{}", module_parameters::max_pins_per_file.value())
        });
    })
}
