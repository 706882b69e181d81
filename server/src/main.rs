//! `kiln`: the server (`kiln serve`) and its tools.

use clap::Parser;

fn main() -> std::process::ExitCode {
    quiet_headless_gpu_probe();
    let cli = kiln_server::config::Cli::parse();
    kiln_server::run(cli)
}

/// On a machine with no Wayland session, Mesa's Vulkan device-select layer still connects to
/// Wayland while wgpu lists adapters, and libwayland prints "XDG_RUNTIME_DIR is invalid or not
/// set" to stderr. The layer only reorders GPUs for a display; kiln picks its adapter itself, so
/// the layer is switched off there (unless the user set `NODEVICE_SELECT`).
#[expect(unsafe_code, reason = "std::env::set_var, before any thread exists")]
fn quiet_headless_gpu_probe() {
    let session = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if !session && std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: the first thing main does: no other thread exists yet to read the environment.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}
