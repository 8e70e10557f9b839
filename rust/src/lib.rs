//! Native core of garm-provider-lxd: LXD transport, instance lists, cloud-config assembly, and
//! the JSON and TOML codecs of the per-command path.

pub mod client;
pub mod cloudinit;
pub mod endpoint;
pub mod error;
pub mod instances;
pub mod lenient;
pub mod sftp;
pub mod stream;
pub mod tls;
pub mod transport;
pub mod values;

use pyo3::prelude::*;

/// The `garm_provider_lxd._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<transport::LxdTransport>()?;
    m.add_function(wrap_pyfunction!(cloudinit::cloud_config_py, m)?)?;
    m.add_function(wrap_pyfunction!(cloudinit::b64encode_py, m)?)?;
    m.add_function(wrap_pyfunction!(instances::provider_instances_py, m)?)?;
    m.add_function(wrap_pyfunction!(instances::provider_instance_py, m)?)?;
    m.add_function(wrap_pyfunction!(instances::state_ipv4_py, m)?)?;
    m.add(
        "LINUX_DISTROS",
        pyo3::types::PyTuple::new(m.py(), instances::LINUX_DISTROS)?,
    )?;
    m.add_function(wrap_pyfunction!(values::json_loads_py, m)?)?;
    m.add_function(wrap_pyfunction!(values::json_dumps_py, m)?)?;
    m.add_function(wrap_pyfunction!(values::toml_loads_py, m)?)?;
    Ok(())
}
