//! Containers: a writable layer (upper + work) on an image, and its bundle.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::images::pick;
use super::{list_ids, now_rfc3339, random_hex, read_json, write_json, Store};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    pub names: Vec<String>,
    /// The image's id.
    pub image: String,
    pub created: String,
    /// Free-form data of the frontend (command, state of its monitor, ...).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

const RECORD: &str = "container.json";

impl Store {
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The OCI bundle directory of a container (config.json + rootfs).
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("bundle")
    }

    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        list_ids(&self.root.join("containers"), RECORD)
            .iter()
            .map(|id| read_json(&self.container_dir(id).join(RECORD)))
            .collect()
    }

    /// Finds a container by id, unique id prefix or name.
    pub fn container(&self, query: &str) -> Result<ContainerRecord> {
        let all = self.containers()?;
        pick(
            query,
            &all,
            |c| &c.id,
            |c| c.names.iter().any(|n| n == query),
        )?
        .cloned()
        .ok_or_else(|| Error::ContainerUnknown(query.to_string()))
    }

    /// Creates a container on the image `image_id`: its record and empty
    /// upper/work directories. A name must be unused.
    pub fn create_container(
        &self,
        image_id: &str,
        name: Option<&str>,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ContainerRecord> {
        let _lock = self.lock()?;
        let all = self.containers()?;
        let id = random_hex(32);
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| format!("hull-{}", &id[..12]));
        if let Some(c) = all.iter().find(|c| c.names.contains(&name)) {
            return Err(Error::NameInUse {
                name,
                kind: "container",
                id: c.id[..12].to_string(),
            });
        }
        let rec = ContainerRecord {
            id: id.clone(),
            names: vec![name],
            image: image_id.to_string(),
            created: now_rfc3339(),
            metadata,
        };
        let tmp = self.temp_dir("container")?;
        for d in ["upper", "work", "bundle/rootfs"] {
            let p = tmp.path().join(d);
            fs::create_dir_all(&p).map_err(Error::io("create", &p))?;
        }
        write_json(&tmp.path().join(RECORD), &rec)?;
        tmp.persist(&self.container_dir(&id))?;
        Ok(rec)
    }

    /// Rewrites a container's record (its metadata changed).
    pub fn put_container(&self, rec: &ContainerRecord) -> Result<()> {
        let dir = self.container_dir(&rec.id);
        if !dir.join(RECORD).exists() {
            return Err(Error::ContainerUnknown(rec.id.clone()));
        }
        write_json(&dir.join(RECORD), rec)
    }

    /// Unmounts the container's rootfs and removes all of it.
    pub fn remove_container(&self, id: &str) -> Result<()> {
        let _lock = self.lock()?;
        let dir = self.container_dir(id);
        if !dir.join(RECORD).exists() {
            return Err(Error::ContainerUnknown(id.to_string()));
        }
        crate::overlay::unmount(&self.bundle_dir(id).join("rootfs"))?;
        let rec = dir.join(RECORD);
        fs::remove_file(&rec).map_err(Error::io("remove", &rec))?;
        fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))
    }
}
