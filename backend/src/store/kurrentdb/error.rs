//! KurrentDB client errors → [`StoreError`], with messages an operator can act on: Chinese for
//! people, then English for logs, as everywhere in Ducha.
//!
//! The client reports a failed connection (refused, unknown host, TLS certificate not trusted, a
//! server without TLS) as one opaque "client error (Connect)"; `super::diagnose` finds out which it
//! was when a store cannot be opened.

use crate::store::StoreError;
use kurrentdb::{Error, GrpcConnectionError};

/// The server's refusal of an append larger than its `MaxAppendSize` (gRPC `InvalidArgument`).
pub fn is_too_large(e: &Error) -> bool {
    matches!(e, Error::Grpc { message, .. } if message.contains("Maximum Append Size"))
}

/// Whether the client's connection task has ended: it answers nothing any more and must be re-created.
pub fn is_connection_lost(e: &Error) -> bool {
    matches!(e, Error::ConnectionClosed | Error::GrpcConnectionError(_))
}

/// Whether an append that failed this way may still have been written.
pub fn outcome_unknown(e: &Error) -> bool {
    matches!(e, Error::ServerError(_) | Error::DeadlineExceeded | Error::Grpc { .. })
}

pub fn kdb_err(e: &Error) -> StoreError {
    match e {
        Error::AccessDenied => StoreError::Unavailable(
            "KurrentDB 拒绝访问：存储地址中的用户名或口令有误，或该用户无权读写 Ducha 的流 / \
             KurrentDB denied access: the user name or password in the store URL is wrong, or the user \
             may not read and write Ducha's streams"
                .into(),
        ),
        Error::NotLeaderException(leader) => StoreError::Unavailable(format!(
            "所连接的 KurrentDB 节点不是主节点（主节点为 {}:{}），客户端正在改连主节点，请重试 / the KurrentDB \
             node is not the leader (the leader is {}:{}); the client is reconnecting to it: retry",
            leader.host, leader.port, leader.host, leader.port
        )),
        Error::GrpcConnectionError(GrpcConnectionError::MaxDiscoveryAttemptReached(n)) => {
            StoreError::Unavailable(format!(
                "找不到可用的 KurrentDB 节点（已尝试 {n} 次）：集群未启动、地址有误或尚未选出主节点？ / no \
                 KurrentDB node could be found after {n} discovery attempts"
            ))
        }
        Error::GrpcConnectionError(GrpcConnectionError::Grpc(m)) | Error::ServerError(m) => {
            StoreError::Unavailable(format!("无法连接 KurrentDB / cannot reach KurrentDB: {}", hint(m)))
        }
        Error::ConnectionClosed => StoreError::Unavailable(
            "KurrentDB 客户端的连接已断开，将重新建立，请重试 / the KurrentDB client's connection ended; it \
             is being re-created: retry"
                .into(),
        ),
        Error::DeadlineExceeded => {
            StoreError::Unavailable("KurrentDB 未在时限内答复 / KurrentDB did not answer in time".into())
        }
        Error::Grpc { message, .. } if is_too_large(e) => StoreError::InvalidAppend(format!(
            "这次追加超过了 KurrentDB 服务器的 MaxAppendSize（默认 1 MiB），请调大该设置 / the append is larger than \
             the server's MaxAppendSize (1 MiB by default): raise it on the server: {message}"
        )),
        Error::ResourceDeleted => StoreError::Corrupt(
            "Ducha 的一个流在 KurrentDB 中被删除了 / one of Ducha's streams was deleted in KurrentDB".into(),
        ),
        Error::UnsupportedFeature => StoreError::Io(
            "KurrentDB 服务器版本过旧，不支持所需操作 / the KurrentDB server is too old for this operation".into(),
        ),
        Error::Grpc { code, message } => StoreError::Io(format!("KurrentDB ({code:?}): {message}")),
        other => StoreError::Io(format!("KurrentDB: {other}")),
    }
}

/// What a failed append tells its caller: as [`kdb_err`], saying so when it may have been written.
pub fn append_err(e: &Error) -> StoreError {
    match kdb_err(e) {
        StoreError::Unavailable(m) if outcome_unknown(e) => StoreError::Unavailable(format!(
            "{m}（这次追加可能已写入，也可能没有 / the append may or may not have been written)"
        )),
        StoreError::Io(m) if outcome_unknown(e) => {
            StoreError::Io(format!("{m} (the append may or may not have been written)"))
        }
        other => other,
    }
}

/// The client's messages sometimes carry the TLS reason (from the server's side of a connection).
fn hint(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        format!(
            "TLS 证书未被信任（用 tlsCAFile=… 指定 CA）/ the TLS certificate was refused (name its CA with tlsCAFile=…): {message}"
        )
    } else if lower.contains("invalidcontenttype") || lower.contains("corrupt message") {
        format!(
            "服务器未启用 TLS（可信网络上可加 tls=false）/ the server does not speak TLS (add tls=false on a trusted network): {message}"
        )
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kurrentdb::{CurrentRevision, Endpoint, StreamState};

    fn unavailable(e: &Error) -> String {
        match kdb_err(e) {
            StoreError::Unavailable(m) => m,
            other => panic!("{e:?} gave {other:?}"),
        }
    }

    #[test]
    fn what_a_user_meets_says_what_to_do() {
        let m = unavailable(&Error::AccessDenied);
        assert!(m.contains("拒绝访问") && m.contains("password"), "{m}");
        let m = unavailable(&Error::NotLeaderException(Endpoint { host: "node2.example".into(), port: 2113 }));
        assert!(m.contains("不是主节点") && m.contains("node2.example:2113") && m.contains("not the leader"), "{m}");
        let m = unavailable(&Error::GrpcConnectionError(GrpcConnectionError::MaxDiscoveryAttemptReached(3)));
        assert!(m.contains("3") && m.contains("discovery"), "{m}");
        let m = unavailable(&Error::GrpcConnectionError(GrpcConnectionError::Grpc(
            "status: Unknown, message: \"client error (Connect)\"".into(),
        )));
        assert!(m.contains("无法连接") && m.contains("client error (Connect)"), "{m}");
        let m = unavailable(&Error::ServerError("invalid peer certificate: UnknownIssuer".into()));
        assert!(m.contains("TLS") && m.contains("tlsCAFile"), "{m}");
        let m = unavailable(&Error::ServerError("received corrupt message of type InvalidContentType".into()));
        assert!(m.contains("tls=false"), "{m}");
        assert!(unavailable(&Error::DeadlineExceeded).contains("in time"));
        assert!(unavailable(&Error::ConnectionClosed).contains("retry"));
    }

    /// The server's answers as gRPC statuses, through the client's own conversion
    /// (`Error::from_grpc`, what every call of the client applies), to what a user reads.
    #[test]
    fn the_servers_statuses_reach_the_user_through_the_clients_mapping() {
        use tonic::metadata::MetadataMap;
        use tonic::{Code, Status};
        let through = |status: Status| unavailable(&Error::from_grpc(status));

        for code in [Code::Unauthenticated, Code::PermissionDenied] {
            let m = through(Status::new(code, "Access denied"));
            assert!(m.contains("拒绝访问") && m.contains("denied access"), "{code:?}: {m}");
        }

        let mut leader = MetadataMap::new();
        leader.insert("exception", "not-leader".parse().unwrap());
        leader.insert("leader-endpoint-host", "node3.example".parse().unwrap());
        leader.insert("leader-endpoint-port", "2113".parse().unwrap());
        let m = through(Status::with_metadata(Code::NotFound, "Leader info available", leader));
        assert!(m.contains("不是主节点") && m.contains("node3.example:2113") && m.contains("retry"), "{m}");

        let m = through(Status::new(Code::Unavailable, "Server Is Not Ready"));
        assert!(m.contains("无法连接") && m.contains("cannot reach") && m.contains("Server Is Not Ready"), "{m}");

        let m = through(Status::new(Code::Unknown, "invalid peer certificate: UnknownIssuer"));
        assert!(m.contains("证书未被信任") && m.contains("certificate was refused") && m.contains("tlsCAFile"), "{m}");

        let m = through(Status::new(Code::DeadlineExceeded, "Deadline Exceeded"));
        assert!(m.contains("时限") && m.contains("in time"), "{m}");
    }

    #[test]
    fn other_errors_keep_their_kind() {
        assert!(matches!(kdb_err(&Error::ResourceDeleted), StoreError::Corrupt(_)));
        assert!(matches!(kdb_err(&Error::UnsupportedFeature), StoreError::Io(_)));
        let wrong = Error::WrongExpectedVersion {
            expected: StreamState::StreamRevision(1),
            current: CurrentRevision::NoStream,
        };
        assert!(matches!(kdb_err(&wrong), StoreError::Io(_)));
        assert!(matches!(kdb_err(&Error::InternalClientError), StoreError::Io(_)));
    }

    #[test]
    fn an_append_above_the_servers_limit_is_an_invalid_append() {
        let e = Error::Grpc {
            code: tonic::Code::InvalidArgument,
            message: "Maximum Append Size of 1048576 Exceeded.".into(),
        };
        assert!(is_too_large(&e));
        let StoreError::InvalidAppend(m) = append_err(&e) else { panic!("{e:?}") };
        assert!(m.contains("MaxAppendSize") && m.contains("1048576"), "{m}");
        let other = Error::Grpc { code: tonic::Code::InvalidArgument, message: "something else".into() };
        assert!(!is_too_large(&other));
        assert!(matches!(kdb_err(&other), StoreError::Io(m) if m.contains("InvalidArgument")));
    }

    #[test]
    fn an_unanswered_append_says_it_may_have_been_written() {
        let StoreError::Unavailable(m) = append_err(&Error::DeadlineExceeded) else { panic!() };
        assert!(m.contains("may or may not"), "{m}");
        let StoreError::Unavailable(m) = append_err(&Error::ServerError("status: Unavailable".into())) else {
            panic!()
        };
        assert!(m.contains("may or may not"), "{m}");
        // Refused before anything was sent: it was not written.
        let StoreError::Unavailable(m) = append_err(&Error::AccessDenied) else { panic!() };
        assert!(!m.contains("may or may not"), "{m}");
        let StoreError::Unavailable(m) = append_err(&Error::ConnectionClosed) else { panic!() };
        assert!(!m.contains("may or may not"), "{m}");
    }

    #[test]
    fn only_a_dead_connection_task_needs_a_new_client() {
        assert!(is_connection_lost(&Error::ConnectionClosed));
        assert!(is_connection_lost(&Error::GrpcConnectionError(GrpcConnectionError::MaxDiscoveryAttemptReached(3))));
        assert!(!is_connection_lost(&Error::ServerError("x".into())));
        assert!(!is_connection_lost(&Error::AccessDenied));
    }
}
