//! `save`: an image as an OCI archive.

use std::path::Path;

use anyhow::{bail, Result};

use crate::ctx::Ctx;

pub fn save(ctx: &Ctx, image: &str, _output: &Path) -> Result<()> {
    let _img = ctx.store.image(image)?;
    bail!("save is not implemented yet")
}
