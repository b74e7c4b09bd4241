//! `SessionService` handlers: each is a thin wrapper around `inner_<call>`, whose
//! `SessionError` becomes a `Status` in `api::error` only.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;

use tonic::{Extensions, Request, Response, Status};

use super::convert::{timestamp, whole_seconds};
use super::deadline::call_deadline;
use super::quotas::Quotas;
use super::validate::{self, Limits};
use crate::layers::auth::{Caller, Permission};
use crate::proto::session::v1 as pb;
use crate::proto::session::v1::session_service_server::SessionService;
use crate::session::manager::{AttributeChanges, Issued, StartParams};
use crate::session::token::TokenKind;
use crate::session::watch::WatchRequest;
use crate::session::{Acting, SessionError, SessionManager};

/// Who calls and what it may do, as the auth layer left it in the request's
/// extensions; no entry means no callers are configured: "anonymous", every group.
pub(crate) fn access(extensions: &Extensions) -> Acting<'_> {
    extensions
        .get::<Caller>()
        .map_or(Acting::ANONYMOUS, |caller| Acting {
            access: caller.access(),
            actor: caller.name(),
        })
}

fn may_logout_all(extensions: &Extensions) -> bool {
    extensions
        .get::<Caller>()
        .is_none_or(|caller| caller.may(Permission::LogoutAll))
}

/// The gRPC face of a `SessionManager`.
pub struct SessionApi {
    manager: Arc<SessionManager>,
    limits: Limits,
    watch_stall_timeout: Duration,
    quotas: Arc<Quotas>,
}

impl SessionApi {
    /// Serves `manager`, refusing requests over `limits`; cuts off a watcher whose
    /// stream stays full for `watch_stall_timeout`.
    pub fn new(
        manager: Arc<SessionManager>,
        limits: Limits,
        watch_stall_timeout: Duration,
    ) -> SessionApi {
        SessionApi {
            manager,
            limits,
            watch_stall_timeout,
            quotas: Arc::default(),
        }
    }

    /// Holds Start and Refresh to `quotas` (by default there are none).
    pub fn with_quotas(self, quotas: Arc<Quotas>) -> SessionApi {
        SessionApi { quotas, ..self }
    }

    async fn inner_watch_sessions(
        &self,
        request: pb::WatchSessionsRequest,
    ) -> Result<WatchEvents, SessionError> {
        let user_id = match request.user_id.as_str() {
            "" => None,
            _ => Some(self.limits.user_id("user_id", request.user_id)?),
        };
        let stream = self
            .manager
            .watch(
                WatchRequest {
                    after_cursor: request.after_cursor,
                    user_id,
                },
                self.watch_stall_timeout,
            )
            .await?;
        Ok(Box::pin(stream.map(|item| {
            item.map(pb::SessionEvent::from).map_err(Status::from)
        })))
    }

    async fn inner_start(
        &self,
        extensions: &Extensions,
        request: pb::StartRequest,
        deadline: Instant,
    ) -> Result<Issued, SessionError> {
        let params = StartParams {
            user_id: self.limits.user_id("user_id", request.user_id)?,
            group: self.limits.group(request.group)?,
            ttl: validate::seconds("ttl_seconds", request.ttl_seconds)?,
            metadata: self.limits.map("metadata", request.metadata)?,
            attributes: self.limits.map("attributes", request.attributes)?,
            scope: self.limits.scope(request.scope)?,
            token_attributes: self
                .limits
                .map("token_attributes", request.token_attributes)?,
            issue_id_token: request.issue_id_token,
            external_user_id: match request.external_user_id.as_str() {
                "" => String::new(),
                _ => self
                    .limits
                    .user_id("external_user_id", request.external_user_id)?,
            },
            client: self.limits.client(request.client)?,
        };
        self.quotas
            .admit_start(extensions.get::<Caller>(), &params.user_id, deadline)
            .await?;
        self.manager.start(access(extensions), params).await
    }

    async fn inner_refresh(
        &self,
        extensions: &Extensions,
        request: pb::RefreshRequest,
        deadline: Instant,
    ) -> Result<Issued, SessionError> {
        let token = validate::token("refresh_token", TokenKind::Refresh, &request.refresh_token)?;
        self.quotas
            .admit_refresh(extensions.get::<Caller>(), token.session_id, deadline)
            .await?;
        let scope = self.limits.scope(request.scope)?;
        let expected_scope = Some(scope.as_str()).filter(|scope| !scope.is_empty());
        let client = self.limits.client(request.client)?;
        self.manager
            .refresh(
                access(extensions),
                token,
                expected_scope,
                request.issue_id_token,
                client.as_ref(),
            )
            .await
    }

    async fn inner_extend(
        &self,
        access: Acting<'_>,
        request: pb::ExtendRequest,
    ) -> Result<pb::ExtendResponse, SessionError> {
        let session_id = validate::session_id("session_id", &request.session_id)?;
        let keep_alive = validate::seconds("keep_alive_seconds", request.keep_alive_seconds)?;
        let extension = self.manager.extend(access, session_id, keep_alive).await?;
        Ok(pb::ExtendResponse {
            session: Some(extension.session.into()),
            extended: extension.extended,
        })
    }

    async fn inner_whoami(
        &self,
        access: Acting<'_>,
        request: pb::WhoamiRequest,
    ) -> Result<pb::WhoamiResponse, SessionError> {
        let token = validate::token("session_token", TokenKind::Session, &request.session_token)?;
        let client = self.limits.client(request.client)?;
        let session = self.manager.whoami(access, token, client.as_ref()).await?;
        Ok(pb::WhoamiResponse {
            expires_in_seconds: whole_seconds(session.expires_in),
            cache_until: timestamp(session.cache_until_ms),
            session: Some(session.into()),
        })
    }

    async fn inner_logout(
        &self,
        extensions: &Extensions,
        request: pb::LogoutRequest,
    ) -> Result<pb::LogoutResponse, SessionError> {
        let by_user = !request.user_id.is_empty() || !request.external_user_id.is_empty();
        if (request.all_for_user || by_user) && !may_logout_all(extensions) {
            return Err(SessionError::PermissionDenied(
                "this caller may not end all sessions of a user (permission LogoutAll)".into(),
            ));
        }
        if by_user {
            if !request.session_token.is_empty() || !request.session_id.is_empty() {
                return Err(SessionError::invalid(
                    "user_id",
                    "(or external_user_id) goes without session_token and session_id",
                ));
            }
            let user = self
                .limits
                .user_ref(request.user_id, request.external_user_id)?;
            let revoked_count = self.manager.logout_user(access(extensions), user).await?;
            return Ok(pb::LogoutResponse { revoked_count });
        }
        let target = validate::session_target(&request.session_token, &request.session_id)?;
        let except = match request.except_session_id.as_str() {
            "" => None,
            _ if !request.all_for_user => {
                return Err(SessionError::invalid(
                    "except_session_id",
                    "goes only with all_for_user = true",
                ))
            }
            id => Some(validate::session_id("except_session_id", id)?),
        };
        let revoked_count = self
            .manager
            .logout(access(extensions), target, request.all_for_user, except)
            .await?;
        Ok(pb::LogoutResponse { revoked_count })
    }

    async fn inner_refresh_all_for_user(
        &self,
        access: Acting<'_>,
        request: pb::RefreshAllForUserRequest,
    ) -> Result<pb::RefreshAllForUserResponse, SessionError> {
        let user = self
            .limits
            .user_ref(request.user_id, request.external_user_id)?;
        let keep_alive = validate::seconds("keep_alive_seconds", request.keep_alive_seconds)?;
        let user_id = self.manager.resolve_user(user).await?;
        let sessions = self
            .manager
            .refresh_all_for_user(access, &user_id, keep_alive)
            .await?;
        Ok(pb::RefreshAllForUserResponse {
            refreshed_count: u32::try_from(sessions.len()).unwrap_or(u32::MAX),
            sessions: sessions.into_iter().map(Into::into).collect(),
        })
    }

    async fn inner_reauthenticate(
        &self,
        access: Acting<'_>,
        request: pb::ReauthenticateRequest,
    ) -> Result<pb::ReauthenticateResponse, SessionError> {
        let target = validate::session_target(&request.session_token, &request.session_id)?;
        let aal = validate::aal(request.aal)?;
        let session = self.manager.reauthenticate(access, target, aal).await?;
        Ok(pb::ReauthenticateResponse {
            expires_in_seconds: whole_seconds(session.expires_in),
            session: Some(session.into()),
        })
    }

    async fn inner_update_attributes(
        &self,
        access: Acting<'_>,
        request: pb::UpdateAttributesRequest,
    ) -> Result<pb::UpdateAttributesResponse, SessionError> {
        let session_id = validate::session_id("session_id", &request.session_id)?;
        let changes = AttributeChanges {
            set: self.limits.map("set", request.set)?,
            remove: self.limits.keys("remove", request.remove)?,
            token_set: self.limits.map("token_set", request.token_set)?,
            token_remove: self.limits.keys("token_remove", request.token_remove)?,
        };
        let fits = |record: &crate::store::SessionRecord| {
            self.limits.entries("set", record.attributes.len())?;
            self.limits
                .entries("token_set", record.token_attributes.len())
        };
        let session = self
            .manager
            .update_attributes(access, session_id, changes, &fits)
            .await?;
        Ok(pb::UpdateAttributesResponse {
            session: Some(session.into()),
        })
    }

    async fn inner_revoke_user_sessions(
        &self,
        access: Acting<'_>,
        request: pb::RevokeUserSessionsRequest,
    ) -> Result<pb::RevokeUserSessionsResponse, SessionError> {
        let user = self
            .limits
            .user_ref(request.user_id, request.external_user_id)?;
        let not_before = validate::moment("not_before", request.not_before)?;
        let revoked_count = self
            .manager
            .revoke_user_before(access, user, not_before)
            .await?;
        Ok(pb::RevokeUserSessionsResponse { revoked_count })
    }

    async fn inner_list_user_sessions(
        &self,
        access: Acting<'_>,
        request: pb::ListUserSessionsRequest,
    ) -> Result<pb::ListUserSessionsResponse, SessionError> {
        let user_id = self.limits.user_id("user_id", request.user_id)?;
        let page_size = validate::page_size(request.page_size)?;
        let before = validate::page_token(&request.page_token)?;
        let page = self
            .manager
            .list_user_sessions(
                access,
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
}

/// The stream WatchSessions answers with.
pub type WatchEvents = Pin<Box<dyn Stream<Item = Result<pb::SessionEvent, Status>> + Send>>;

/// The chunks of a backup file, as Backup streams them.
pub type BackupChunks = Pin<Box<dyn Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

#[tonic::async_trait]
impl SessionService for SessionApi {
    type WatchSessionsStream = WatchEvents;
    type BackupStream = BackupChunks;

    async fn backup(
        &self,
        _request: Request<pb::BackupRequest>,
    ) -> Result<Response<BackupChunks>, Status> {
        let chunks = self.manager.backup().await?.map(|chunk| {
            chunk
                .map(|data| pb::BackupChunk { data })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn watch_sessions(
        &self,
        request: Request<pb::WatchSessionsRequest>,
    ) -> Result<Response<WatchEvents>, Status> {
        Ok(Response::new(
            self.inner_watch_sessions(request.into_inner()).await?,
        ))
    }

    async fn start(
        &self,
        request: Request<pb::StartRequest>,
    ) -> Result<Response<pb::StartResponse>, Status> {
        let (metadata, extensions, request) = request.into_parts();
        let deadline = call_deadline(&metadata, self.limits.call_timeout);
        let issued = self.inner_start(&extensions, request, deadline).await?;
        Ok(Response::new(issued.into()))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        let (metadata, extensions, request) = request.into_parts();
        let deadline = call_deadline(&metadata, self.limits.call_timeout);
        let issued = self.inner_refresh(&extensions, request, deadline).await?;
        Ok(Response::new(issued.into()))
    }

    async fn extend(
        &self,
        request: Request<pb::ExtendRequest>,
    ) -> Result<Response<pb::ExtendResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        Ok(Response::new(
            self.inner_extend(access(&extensions), request).await?,
        ))
    }

    async fn whoami(
        &self,
        request: Request<pb::WhoamiRequest>,
    ) -> Result<Response<pb::WhoamiResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        Ok(Response::new(
            self.inner_whoami(access(&extensions), request).await?,
        ))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        Ok(Response::new(
            self.inner_logout(&extensions, request).await?,
        ))
    }

    async fn refresh_all_for_user(
        &self,
        request: Request<pb::RefreshAllForUserRequest>,
    ) -> Result<Response<pb::RefreshAllForUserResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        Ok(Response::new(
            self.inner_refresh_all_for_user(access(&extensions), request)
                .await?,
        ))
    }

    async fn reauthenticate(
        &self,
        request: Request<pb::ReauthenticateRequest>,
    ) -> Result<Response<pb::ReauthenticateResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        Ok(Response::new(
            self.inner_reauthenticate(access(&extensions), request)
                .await?,
        ))
    }

    async fn update_attributes(
        &self,
        request: Request<pb::UpdateAttributesRequest>,
    ) -> Result<Response<pb::UpdateAttributesResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        Ok(Response::new(
            self.inner_update_attributes(access(&extensions), request)
                .await?,
        ))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: self.manager.jwks().await.to_string(),
        }))
    }

    async fn rotate_signing_key(
        &self,
        _request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let kid = self.manager.rotate_signing_key().await?;
        Ok(Response::new(pb::RotateSigningKeyResponse { kid }))
    }

    async fn list_revocations(
        &self,
        request: Request<pb::ListRevocationsRequest>,
    ) -> Result<Response<pb::ListRevocationsResponse>, Status> {
        Ok(Response::new(
            super::revocations::list_revocations(&self.manager, request.into_inner()).await?,
        ))
    }

    async fn list_user_sessions(
        &self,
        request: Request<pb::ListUserSessionsRequest>,
    ) -> Result<Response<pb::ListUserSessionsResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        Ok(Response::new(
            self.inner_list_user_sessions(access(&extensions), request)
                .await?,
        ))
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<pb::RevokeUserSessionsRequest>,
    ) -> Result<Response<pb::RevokeUserSessionsResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        Ok(Response::new(
            self.inner_revoke_user_sessions(access(&extensions), request)
                .await?,
        ))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let answer =
            super::search::list_sessions(&self.manager, &self.limits, access(&extensions), request);
        Ok(Response::new(answer.await?))
    }

    async fn revoke_sessions(
        &self,
        request: Request<pb::RevokeSessionsRequest>,
    ) -> Result<Response<pb::RevokeSessionsResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        let answer = super::search::revoke_sessions(
            &self.manager,
            &self.limits,
            access(&extensions),
            request,
        );
        Ok(Response::new(answer.await?))
    }
}
