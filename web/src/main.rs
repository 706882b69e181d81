//! The dashboard's entry point: mount the app (wasm only; the native build is empty).

fn main() {
    #[cfg(target_arch = "wasm32")]
    kiln_web::start();
}
