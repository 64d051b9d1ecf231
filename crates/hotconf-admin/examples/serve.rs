//! Serves the admin API and page for one config file until interrupted:
//! `cargo run -p hotconf-admin --example serve -- app.toml [127.0.0.1:9180]`.
//!
//! The config is read as untyped JSON; edit the file and watch the page update. With
//! `HOTCONF_ADMIN_TOKEN` set, state changes need that token (the page asks for it).

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: serve CONFIG [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9180".into());
    let reloader = hotconf::Reloader::<serde_json::Value>::builder()
        .file(&path)
        .build()?;
    reloader.watch()?;
    let mut admin = hotconf_admin::Admin::new(reloader.control());
    if let Ok(token) = std::env::var("HOTCONF_ADMIN_TOKEN") {
        admin = admin.token(token);
    }
    let server = admin.spawn(addr.parse()?)?;
    println!("admin page on http://{}/", server.addr());
    loop {
        std::thread::park();
    }
}
