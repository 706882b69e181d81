//! Rebuilds kiln when the dashboard is rebuilt. rust-embed includes the files of trunk's `dist/`
//! that exist at compile time, so cargo learns only of those; watching the folder also catches a
//! dashboard built after kiln was. The folder is made empty when missing, since cargo treats a
//! missing watched path as always changed (kiln would recompile on every build).

fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist");
    if let Err(e) = std::fs::create_dir_all(&dist) {
        println!("cargo::warning=cannot create {}: {e}", dist.display());
    }
    println!("cargo::rerun-if-changed=../dist");
}
