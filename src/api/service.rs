//! `SessionService` handlers, all of one shape: `inner_<call>` decodes, validates and
//! calls the session rules, and its `SessionError` becomes a `Status` in `api::error`
//! only; the handler itself is `inner_<call>(request).map(Response::new).map_err(Into::into)`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert::{timestamp, whole_seconds};
use super::deadline::call_deadline;
use super::proof::presented_proof;
use super::quotas::Quotas;
use super::validate::{self, RequestLimits};
use crate::caller::{self, acting, Permission};
use crate::proto::session::v1 as pb;
use crate::proto::session::v1::session_service_server::SessionService;
use crate::session::manager::Reauthentication;
use crate::session::token::TokenKind;
use crate::session::watch::WatchRequest;
use crate::session::{SessionError, SessionManager};

/// The paths of the calls a device proof may be for (its `htu` on a direct call).
const REFRESH_PATH: &str = "/session.v1.SessionService/Refresh";
const WHOAMI_PATH: &str = "/session.v1.SessionService/Whoami";

/// The gRPC face of a `SessionManager`.
pub struct SessionApi {
    manager: Arc<SessionManager>,
    limits: RequestLimits,
    /// The server's longest call, which bounds how long a quota refusal may be held.
    call_timeout: Duration,
    watch_stall_timeout: Duration,
    quotas: Arc<Quotas>,
}

impl SessionApi {
    /// Serves `manager`, refusing requests over `limits` and answering within
    /// `call_timeout`; cuts off a watcher whose stream stays full for
    /// `watch_stall_timeout`.
    pub fn new(
        manager: Arc<SessionManager>,
        limits: RequestLimits,
        call_timeout: Duration,
        watch_stall_timeout: Duration,
    ) -> SessionApi {
        SessionApi {
            manager,
            limits,
            call_timeout,
            watch_stall_timeout,
            quotas: Arc::default(),
        }
    }

    /// Holds Start and Refresh to `quotas` (by default there are none).
    pub fn with_quotas(self, quotas: Arc<Quotas>) -> SessionApi {
        SessionApi { quotas, ..self }
    }

    async fn inner_start(
        &self,
        request: Request<pb::StartRequest>,
    ) -> Result<pb::StartResponse, SessionError> {
        let (metadata, extensions, request) = request.into_parts();
        let params = self.limits.start(request)?;
        let deadline = call_deadline(&metadata, self.call_timeout);
        self.quotas
            .admit_start(caller::identified(&extensions), &params.user_id, deadline)
            .await?;
        let issued = self.manager.start(acting(&extensions), params).await?;
        Ok(issued.into())
    }

    async fn inner_refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<pb::RefreshResponse, SessionError> {
        let (metadata, extensions, request) = request.into_parts();
        let token = validate::token("refresh_token", TokenKind::Refresh, &request.refresh_token)?;
        let deadline = call_deadline(&metadata, self.call_timeout);
        self.quotas
            .admit_refresh(caller::identified(&extensions), token.session_id, deadline)
            .await?;
        let scope = self.limits.scope(request.scope)?;
        let expected_scope = Some(scope.as_str()).filter(|scope| !scope.is_empty());
        let client = self.limits.client(request.client)?;
        let proof = presented_proof(&metadata, REFRESH_PATH)?;
        let issued = self
            .manager
            .refresh(
                acting(&extensions),
                token,
                expected_scope,
                request.issue_id_token,
                client.as_ref(),
                proof.as_ref(),
            )
            .await?;
        Ok(issued.into())
    }

    async fn inner_extend(
        &self,
        request: Request<pb::ExtendRequest>,
    ) -> Result<pb::ExtendResponse, SessionError> {
        let (_, extensions, request) = request.into_parts();
        let session_id = validate::session_id("session_id", &request.session_id)?;
        let keep_alive = validate::seconds("keep_alive_seconds", request.keep_alive_seconds)?;
        let extension = self
            .manager
            .extend(acting(&extensions), session_id, keep_alive)
            .await?;
        Ok(pb::ExtendResponse {
            session: Some(extension.session.into()),
            extended: extension.extended,
        })
    }

    async fn inner_whoami(
        &self,
        request: Request<pb::WhoamiRequest>,
    ) -> Result<pb::WhoamiResponse, SessionError> {
        let (metadata, extensions, request) = request.into_parts();
        let token = validate::token("session_token", TokenKind::Session, &request.session_token)?;
        let client = self.limits.client(request.client)?;
        let proof = presented_proof(&metadata, WHOAMI_PATH)?;
        let session = self
            .manager
            .whoami(acting(&extensions), token, client.as_ref(), proof.as_ref())
            .await?;
        Ok(pb::WhoamiResponse {
            expires_in_seconds: whole_seconds(session.expires_in),
            cache_until: timestamp(session.cache_until_ms),
            session: Some(session.into()),
        })
    }

    async fn inner_logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<pb::LogoutResponse, SessionError> {
        let (_, extensions, request) = request.into_parts();
        let by_user = !request.user_id.is_empty() || !request.external_user_id.is_empty();
        if (request.all_for_user || by_user) && !caller::may(&extensions, Permission::LogoutAll) {
            return Err(SessionError::PermissionDenied(
                "this caller may not end all sessions of a user (permission LogoutAll)".into(),
            ));
        }
        if by_user {
            validate::logout_by_user(&request.session_token, &request.session_id)?;
            let user = self
                .limits
                .user_ref(request.user_id, request.external_user_id)?;
            let revoked_count = self.manager.logout_user(acting(&extensions), user).await?;
            return Ok(pb::LogoutResponse { revoked_count });
        }
        let target = validate::session_target(&request.session_token, &request.session_id)?;
        let except = validate::except_session_id(&request.except_session_id, request.all_for_user)?;
        let revoked_count = self
            .manager
            .logout(acting(&extensions), target, request.all_for_user, except)
            .await?;
        Ok(pb::LogoutResponse { revoked_count })
    }

    async fn inner_refresh_all_for_user(
        &self,
        request: Request<pb::RefreshAllForUserRequest>,
    ) -> Result<pb::RefreshAllForUserResponse, SessionError> {
        let (_, extensions, request) = request.into_parts();
        let user = self
            .limits
            .user_ref(request.user_id, request.external_user_id)?;
        let keep_alive = validate::seconds("keep_alive_seconds", request.keep_alive_seconds)?;
        let user_id = self.manager.resolve_user(user).await?;
        let sessions = self
            .manager
            .refresh_all_for_user(acting(&extensions), &user_id, keep_alive)
            .await?;
        Ok(pb::RefreshAllForUserResponse {
            refreshed_count: u32::try_from(sessions.len()).unwrap_or(u32::MAX),
            sessions: sessions.into_iter().map(Into::into).collect(),
        })
    }

    async fn inner_reauthenticate(
        &self,
        request: Request<pb::ReauthenticateRequest>,
    ) -> Result<pb::ReauthenticateResponse, SessionError> {
        let (_, extensions, request) = request.into_parts();
        let target = validate::session_target(&request.session_token, &request.session_id)?;
        let change = Reauthentication {
            aal: validate::aal(request.aal)?,
            device_key: validate::device_key(&request.device_key)?,
        };
        let session = self
            .manager
            .reauthenticate(acting(&extensions), target, change)
            .await?;
        Ok(pb::ReauthenticateResponse {
            expires_in_seconds: whole_seconds(session.expires_in),
            session: Some(session.into()),
        })
    }

    async fn inner_update_attributes(
        &self,
        request: Request<pb::UpdateAttributesRequest>,
    ) -> Result<pb::UpdateAttributesResponse, SessionError> {
        let (_, extensions, request) = request.into_parts();
        let session_id = validate::session_id("session_id", &request.session_id)?;
        let changes = self.limits.attribute_changes(request)?;
        let fits = |record: &crate::store::SessionRecord| self.limits.attributes_fit(record);
        let session = self
            .manager
            .update_attributes(acting(&extensions), session_id, changes, &fits)
            .await?;
        Ok(pb::UpdateAttributesResponse {
            session: Some(session.into()),
        })
    }

    async fn inner_revoke_user_sessions(
        &self,
        request: Request<pb::RevokeUserSessionsRequest>,
    ) -> Result<pb::RevokeUserSessionsResponse, SessionError> {
        let (_, extensions, request) = request.into_parts();
        let user = self
            .limits
            .user_ref(request.user_id, request.external_user_id)?;
        let not_before = validate::moment("not_before", request.not_before)?;
        let revoked_count = self
            .manager
            .revoke_user_before(acting(&extensions), user, not_before)
            .await?;
        Ok(pb::RevokeUserSessionsResponse { revoked_count })
    }

    async fn inner_list_user_sessions(
        &self,
        request: Request<pb::ListUserSessionsRequest>,
    ) -> Result<pb::ListUserSessionsResponse, SessionError> {
        let (_, extensions, request) = request.into_parts();
        let user_id = self.limits.user_id("user_id", request.user_id)?;
        let page_size = validate::page_size(request.page_size)?;
        let before = validate::page_token(&request.page_token)?;
        let page = self
            .manager
            .list_user_sessions(
                acting(&extensions),
                &user_id,
                page_size,
                before,
                request.include_inactive,
            )
            .await?;
        Ok(pb::ListUserSessionsResponse {
            sessions: page.sessions.into_iter().map(Into::into).collect(),
            next_page_token: page
                .next
                .map(validate::encode_page_token)
                .unwrap_or_default(),
        })
    }

    async fn inner_list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<pb::ListSessionsResponse, SessionError> {
        let (_, extensions, request) = request.into_parts();
        super::search::list_sessions(&self.manager, &self.limits, acting(&extensions), request)
            .await
    }

    async fn inner_revoke_sessions(
        &self,
        request: Request<pb::RevokeSessionsRequest>,
    ) -> Result<pb::RevokeSessionsResponse, SessionError> {
        let (_, extensions, request) = request.into_parts();
        super::search::revoke_sessions(&self.manager, &self.limits, acting(&extensions), request)
            .await
    }

    async fn inner_watch_sessions(
        &self,
        request: Request<pb::WatchSessionsRequest>,
    ) -> Result<WatchEvents, SessionError> {
        let request = request.into_inner();
        let user_id = match request.user_id.as_str() {
            "" => None,
            _ => Some(self.limits.user_id("user_id", request.user_id)?),
        };
        let watch = WatchRequest {
            after_cursor: request.after_cursor,
            user_id,
        };
        let stream = self.manager.watch(watch, self.watch_stall_timeout).await?;
        Ok(Box::pin(stream.map(|item| {
            item.map(pb::SessionEvent::from).map_err(Status::from)
        })))
    }

    async fn inner_backup(
        &self,
        _request: Request<pb::BackupRequest>,
    ) -> Result<BackupChunks, SessionError> {
        let chunks = self.manager.backup().await?;
        Ok(Box::pin(chunks.map(|chunk| {
            chunk
                .map(|data| pb::BackupChunk { data })
                .map_err(Status::from)
        })))
    }

    async fn inner_get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<pb::GetJwksResponse, SessionError> {
        Ok(pb::GetJwksResponse {
            jwks_json: self.manager.jwks().await.to_string(),
        })
    }

    async fn inner_rotate_signing_key(
        &self,
        _request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<pb::RotateSigningKeyResponse, SessionError> {
        let kid = self.manager.rotate_signing_key().await?;
        Ok(pb::RotateSigningKeyResponse { kid })
    }

    async fn inner_list_revocations(
        &self,
        request: Request<pb::ListRevocationsRequest>,
    ) -> Result<pb::ListRevocationsResponse, SessionError> {
        super::revocations::list_revocations(&self.manager, request.into_inner()).await
    }
}

/// The stream WatchSessions answers with.
pub type WatchEvents = Pin<Box<dyn Stream<Item = Result<pb::SessionEvent, Status>> + Send>>;

/// The chunks of a backup file, as Backup streams them.
pub type BackupChunks = Pin<Box<dyn Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

#[tonic::async_trait]
impl SessionService for SessionApi {
    type WatchSessionsStream = WatchEvents;
    type BackupStream = BackupChunks;

    // Every handler has the same shape; `inner_<call>` above does the work.
    async fn start(
        &self,
        request: Request<pb::StartRequest>,
    ) -> Result<Response<pb::StartResponse>, Status> {
        self.inner_start(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        self.inner_refresh(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn extend(
        &self,
        request: Request<pb::ExtendRequest>,
    ) -> Result<Response<pb::ExtendResponse>, Status> {
        self.inner_extend(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn whoami(
        &self,
        request: Request<pb::WhoamiRequest>,
    ) -> Result<Response<pb::WhoamiResponse>, Status> {
        self.inner_whoami(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        self.inner_logout(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn refresh_all_for_user(
        &self,
        request: Request<pb::RefreshAllForUserRequest>,
    ) -> Result<Response<pb::RefreshAllForUserResponse>, Status> {
        self.inner_refresh_all_for_user(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn reauthenticate(
        &self,
        request: Request<pb::ReauthenticateRequest>,
    ) -> Result<Response<pb::ReauthenticateResponse>, Status> {
        self.inner_reauthenticate(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn update_attributes(
        &self,
        request: Request<pb::UpdateAttributesRequest>,
    ) -> Result<Response<pb::UpdateAttributesResponse>, Status> {
        self.inner_update_attributes(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<pb::RevokeUserSessionsRequest>,
    ) -> Result<Response<pb::RevokeUserSessionsResponse>, Status> {
        self.inner_revoke_user_sessions(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn list_user_sessions(
        &self,
        request: Request<pb::ListUserSessionsRequest>,
    ) -> Result<Response<pb::ListUserSessionsResponse>, Status> {
        self.inner_list_user_sessions(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        self.inner_list_sessions(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn revoke_sessions(
        &self,
        request: Request<pb::RevokeSessionsRequest>,
    ) -> Result<Response<pb::RevokeSessionsResponse>, Status> {
        self.inner_revoke_sessions(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn watch_sessions(
        &self,
        request: Request<pb::WatchSessionsRequest>,
    ) -> Result<Response<WatchEvents>, Status> {
        self.inner_watch_sessions(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn backup(
        &self,
        request: Request<pb::BackupRequest>,
    ) -> Result<Response<BackupChunks>, Status> {
        self.inner_backup(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn get_jwks(
        &self,
        request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        self.inner_get_jwks(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        self.inner_rotate_signing_key(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }

    async fn list_revocations(
        &self,
        request: Request<pb::ListRevocationsRequest>,
    ) -> Result<Response<pb::ListRevocationsResponse>, Status> {
        self.inner_list_revocations(request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }
}
