//! Native core of garm-provider-lxd: LXD transport and instance-list conversion.

pub mod client;
pub mod endpoint;
pub mod error;
pub mod stream;
pub mod tls;
pub mod transport;

use pyo3::prelude::*;

/// The `garm_provider_lxd._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<transport::LxdTransport>()?;
    Ok(())
}
