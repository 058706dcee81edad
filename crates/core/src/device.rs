//! Device selection: `"cpu"` always, `"cuda"` only in builds with the `cuda` feature.
//!
//! ```
//! assert!(goldpan_core::device::resolve("cpu").is_ok());
//! assert_eq!(goldpan_core::device::resolve("tpu").unwrap_err().code(), "E_CONFIG");
//! ```
use crate::error::{Error, Result};
use candle_core::Device;

pub const DEVICES: &[&str] = &["cpu", "cuda"];

pub fn resolve(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(),
        other => {
            Err(Error::config("device", format!("unknown device {other:?}; expected one of {}", DEVICES.join(", "))))
        }
    }
}

/// Checks that `name` is a device name, without opening the device.
pub fn check_name(name: &str) -> Result<()> {
    if DEVICES.contains(&name) {
        Ok(())
    } else {
        Err(Error::config("device", format!("unknown device {name:?}; expected one of {}", DEVICES.join(", "))))
    }
}

/// Whether this build can run on CUDA at all (it may still find no GPU).
pub const fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    Device::new_cuda(0).map_err(|e| Error::Device { requested: "cuda".into(), reason: e.to_string() })
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    Err(Error::Device {
        requested: "cuda".into(),
        reason: "this build of goldpan has no CUDA support (rebuild with `--features cuda`)".into(),
    })
}
