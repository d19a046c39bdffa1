//! From an image reference to an OCI bundle, with libimage alone: pull the
//! image into a store (unless it is there), create a container on it,
//! mount its overlay rootfs and write config.json. Prints the bundle dir.
//! hack/bench-pull times this against `skopeo copy` + `umoci unpack`.
//!
//! Usage: bundle STORE REFERENCE [--insecure HOST]... [--no-pull]
//!        bundle STORE --remove   (unmount and remove every container)

use std::process::ExitCode;

use libimage::bundle::{runtime_config, Overrides};
use libimage::imagefs::ImageFs;
use libimage::registry::config::{RegistriesConfig, RegistryEntry};
use libimage::registry::{Client, ClientOptions};
use libimage::{pull, ProgressMode, PullOptions, Store};

fn run(args: &[String]) -> libimage::Result<()> {
    let store = Store::open(&args[0])?;
    if args.get(1).map(String::as_str) == Some("--remove") {
        for c in store.containers()? {
            store.unmount_rootfs(&c)?;
            store.remove_container(&c.id)?;
        }
        return Ok(());
    }
    let reference = &args[1];
    let mut registries = RegistriesConfig::default();
    let mut fetch = true;
    let mut rest = args[2..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--insecure" => registries.registries.push(RegistryEntry {
                location: rest.next().cloned().unwrap_or_default(),
                insecure: true,
                ca: None,
            }),
            "--no-pull" => fetch = false,
            other => eprintln!("bundle: ignoring {other:?}"),
        }
    }
    let image = if fetch {
        let client = Client::new(ClientOptions {
            registries,
            ..ClientOptions::default()
        });
        let opts = PullOptions {
            progress: ProgressMode::Quiet,
            ..PullOptions::default()
        };
        pull(&store, &client, reference, &opts)?.image
    } else {
        store.image(reference)?
    };
    let config = store.image_config(&image)?;
    let fs = ImageFs::open(&store, &image.id)?;
    let spec = runtime_config(&fs, &config, &Overrides::default())?;
    let c = store.create_container(&image.id, None, Default::default())?;
    let dir = store.write_bundle(&c, &spec)?;
    println!("{}", dir.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!(
            "usage: bundle STORE REFERENCE [--insecure HOST]... [--no-pull] | STORE --remove"
        );
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bundle: {e}");
            ExitCode::FAILURE
        }
    }
}
