//! Projection checkpoints. A read-model checkpoint runs to tens of megabytes, while KurrentDB takes
//! at most `MaxAppendSize` (1 MiB by default) per append and 16 MiB per event, so a checkpoint is
//! saved in two steps:
//!
//! 1. its bytes go into a fresh stream `{namespace}-blob-{uuid}`, in chunks of one append each;
//! 2. then a small pointer event goes into `{namespace}-checkpoint-{name}`: position, blob stream,
//!    chunk count, length and SHA-256.
//!
//! Loading reads the last pointer and its blob, and checks count, length and hash. A crash between
//! the steps leaves an unreferenced blob and the previous checkpoint in force; after a pointer is
//! written, the blob of the pointer before it is deleted (best effort, so a concurrent loader that
//! still read the older pointer tries again with the new one).

use super::Shared;
use super::error::kdb_err;
use super::read::read_records;
use crate::store::StoreError;
use bytes::Bytes;
use kurrentdb::{AppendToStreamOptions, DeleteStreamOptions, EventData, StreamMetadata, StreamPosition, StreamState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const POINTER_TYPE: &str = "DuchaCheckpoint";
const CHUNK_TYPE: &str = "DuchaCheckpointChunk";
/// Pointers kept in a checkpoint's stream (the server drops older ones).
const KEEP_POINTERS: u64 = 8;
/// Room left in an append for the record's own overhead.
const APPEND_OVERHEAD: usize = 4096;
const LOAD_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    pub position: u64,
    /// The stream holding the bytes; none for an empty checkpoint.
    pub blob: Option<String>,
    pub chunks: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// How many bytes of a checkpoint go into one event (one append each).
pub fn chunk_size(max_append_bytes: usize) -> usize {
    max_append_bytes.saturating_sub(APPEND_OVERHEAD).max(APPEND_OVERHEAD)
}

pub fn pointer_for(position: u64, blob: Option<String>, data: &[u8], chunk: usize) -> Pointer {
    Pointer {
        position,
        chunks: if blob.is_some() { data.len().div_ceil(chunk) as u64 } else { 0 },
        blob,
        bytes: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
    }
}

/// The checkpoint's bytes from its chunks, if they are what the pointer says.
pub fn assemble(pointer: &Pointer, chunks: &[Bytes]) -> Result<Vec<u8>, String> {
    if chunks.len() as u64 != pointer.chunks {
        return Err(format!("{} chunks where the pointer says {}", chunks.len(), pointer.chunks));
    }
    let data: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    if data.len() as u64 != pointer.bytes || hex::encode(Sha256::digest(&data)) != pointer.sha256 {
        return Err("its bytes do not match the pointer's length and SHA-256".into());
    }
    Ok(data)
}

pub async fn save(shared: &Shared, name: &str, position: u64, data: &[u8]) -> Result<(), StoreError> {
    let chunk = chunk_size(shared.max_append_bytes);
    let blob = (!data.is_empty()).then(|| shared.names.blob(uuid::Uuid::now_v7()));
    if let Some(blob) = &blob {
        for (i, part) in data.chunks(chunk).enumerate() {
            let state = match i.checked_sub(1) {
                None => StreamState::NoStream,
                Some(r) => StreamState::StreamRevision(r as u64),
            };
            let event = EventData::binary(CHUNK_TYPE, Bytes::copy_from_slice(part));
            append(shared, blob, state, event).await?;
        }
    }
    let pointer = pointer_for(position, blob.clone(), data, chunk);
    let body = serde_json::to_vec(&pointer).map_err(|e| StoreError::Io(e.to_string()))?;
    let stream = shared.names.checkpoint(name);
    let written = append(shared, &stream, StreamState::Any, EventData::binary(POINTER_TYPE, body.into())).await?;
    let (_, client) = shared.conn.client();
    if written == 0 {
        let metadata = StreamMetadata::builder().max_count(KEEP_POINTERS).build();
        if let Err(e) = client.set_stream_metadata(stream.as_str(), &AppendToStreamOptions::default(), &metadata).await
        {
            tracing::warn!(error = %e, %stream, "cannot limit the checkpoint stream's length");
        }
    } else if let Some(previous) = pointer_at(shared, &stream, written - 1).await.ok().flatten()
        && let Some(old) = previous.blob.filter(|old| Some(old) != blob.as_ref())
        && let Err(e) = client.delete_stream(old.as_str(), &DeleteStreamOptions::default()).await
    {
        tracing::warn!(error = %e, blob = %old, "cannot delete a replaced checkpoint");
    }
    Ok(())
}

pub async fn load(shared: &Shared, name: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let stream = shared.names.checkpoint(name);
    let mut problem = String::new();
    for _ in 0..LOAD_ATTEMPTS {
        let Some(last) = read_records(shared, &stream, StreamPosition::End, true, 1).await?.into_iter().next() else {
            return Ok(None);
        };
        let pointer = parse_pointer(&last.data)?;
        let Some(blob) = &pointer.blob else {
            return assemble(&pointer, &[]).map(|d| Some((pointer.position, d))).map_err(StoreError::Corrupt);
        };
        // A blob deleted under us was replaced by a newer checkpoint: read the pointer again.
        let chunks = match read_records(shared, blob, StreamPosition::Start, false, pointer.chunks).await {
            Ok(events) => events.into_iter().map(|e| e.data).collect::<Vec<_>>(),
            Err(StoreError::Corrupt(m)) => {
                problem = m;
                continue;
            }
            Err(e) => return Err(e),
        };
        match assemble(&pointer, &chunks) {
            Ok(data) => return Ok(Some((pointer.position, data))),
            Err(m) => problem = m,
        }
    }
    Err(StoreError::Corrupt(format!("checkpoint {name:?}: {problem}")))
}

fn parse_pointer(body: &[u8]) -> Result<Pointer, StoreError> {
    serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(format!("invalid checkpoint pointer: {e}")))
}

async fn pointer_at(shared: &Shared, stream: &str, revision: u64) -> Result<Option<Pointer>, StoreError> {
    let found = read_records(shared, stream, StreamPosition::Position(revision), false, 1).await?;
    found.first().map(|e| parse_pointer(&e.data)).transpose()
}

/// One append; returns the revision of the event written.
async fn append(shared: &Shared, stream: &str, state: StreamState, event: EventData) -> Result<u64, StoreError> {
    let (generation, client) = shared.conn.client();
    let options = AppendToStreamOptions::default().stream_state(state).requires_leader(true);
    match client.append_to_stream(stream, &options, event).await {
        Ok(w) => Ok(w.next_expected_version),
        Err(e) => {
            shared.conn.failed(generation, &e);
            Err(kdb_err(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(data: &[u8], chunk: usize) -> Vec<Bytes> {
        data.chunks(chunk).map(Bytes::copy_from_slice).collect()
    }

    #[test]
    fn a_checkpoint_survives_its_chunks() {
        let chunk = chunk_size(64 << 10);
        let data: Vec<u8> = (0..(chunk * 3 + 17)).map(|i| (i % 251) as u8).collect();
        let p = pointer_for(42, Some("ns-blob-x".into()), &data, chunk);
        assert_eq!((p.position, p.chunks, p.bytes), (42, 4, data.len() as u64));
        assert_eq!(assemble(&p, &split(&data, chunk)), Ok(data.clone()));
        let mut parts = split(&data, chunk);
        parts.pop();
        assert!(assemble(&p, &parts).is_err(), "a missing chunk");
        let mut parts = split(&data, chunk);
        parts.swap(0, 1);
        assert!(assemble(&p, &parts).is_err(), "chunks out of order");
        let mut bad = data.clone();
        bad[5] ^= 1;
        assert!(assemble(&p, &split(&bad, chunk)).is_err(), "a changed byte");
    }

    #[test]
    fn an_empty_checkpoint_has_no_blob() {
        let p = pointer_for(9, None, &[], chunk_size(1 << 20));
        assert_eq!((p.chunks, p.bytes), (0, 0));
        assert_eq!(assemble(&p, &[]), Ok(Vec::new()));
        let back: Pointer = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn chunks_fit_the_servers_append_limit() {
        assert_eq!(chunk_size(1 << 20), (1 << 20) - 4096);
        assert!(chunk_size(16 << 20) < 16 << 20);
        assert_eq!(chunk_size(1000), 4096, "never zero");
        assert!(matches!(parse_pointer(b"{}"), Err(StoreError::Corrupt(_))));
    }
}
