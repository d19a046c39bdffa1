#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
