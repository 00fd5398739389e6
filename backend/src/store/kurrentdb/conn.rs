//! The client, re-created when its connection task has ended.
//!
//! The `kurrentdb` client runs one task that picks a node and hands out connections; when it cannot
//! reach any node (the server is down at that moment, a cluster is electing), the task ends and every
//! later call answers `ConnectionClosed`, for ever. A store outlives such moments: after an error
//! that means the task is gone, the next call gets a new client.

use super::error::is_connection_lost;
use crate::store::StoreError;
use kurrentdb::{Client, ClientSettings};
use std::sync::Mutex;

pub struct Conn {
    /// Holds the password: never log it (its `Debug` prints it).
    settings: ClientSettings,
    /// The current client and its generation (which client an error came from).
    current: Mutex<(u64, Client)>,
}

impl Conn {
    /// Must run inside the Tokio runtime (the client spawns its task there).
    pub fn new(settings: ClientSettings) -> Result<Conn, StoreError> {
        let client = make(&settings)?;
        Ok(Conn { settings, current: Mutex::new((0, client)) })
    }

    /// The client to use, with its generation for [`Conn::failed`].
    pub fn client(&self) -> (u64, Client) {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        (current.0, current.1.clone())
    }

    /// Tells of an error from the client of `generation`: when it means the client's task has
    /// ended, that client is replaced (once, however many callers saw the error).
    pub fn failed(&self, generation: u64, e: &kurrentdb::Error) {
        if !is_connection_lost(e) {
            return;
        }
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.0 != generation {
            return;
        }
        match make(&self.settings) {
            Ok(client) => *current = (generation + 1, client),
            Err(err) => tracing::warn!(error = %err, "cannot re-create the KurrentDB client"),
        }
    }
}

fn make(settings: &ClientSettings) -> Result<Client, StoreError> {
    Client::new(settings.clone()).map_err(|e| {
        StoreError::Io(format!("无法创建 KurrentDB 客户端（证书文件有误？）/ cannot set up the KurrentDB client: {e}"))
    })
}
