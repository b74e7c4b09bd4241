//! `SessionService` handlers: each is a thin wrapper around `inner_<call>`, whose
//! `SessionError` becomes a `Status` in `api::error` only.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::whole_seconds;
use super::validate::{self, Limits};
use crate::proto::session::v1 as pb;
use crate::proto::session::v1::session_service_server::SessionService;
use crate::session::manager::{Issued, LogoutTarget, StartParams};
use crate::session::token::TokenKind;
use crate::session::{SessionError, SessionManager};

/// The gRPC face of a `SessionManager`.
pub struct SessionApi {
    manager: Arc<SessionManager>,
    limits: Limits,
}

impl SessionApi {
    /// Serves `manager`, refusing requests over `limits`.
    pub fn new(manager: Arc<SessionManager>, limits: Limits) -> SessionApi {
        SessionApi { manager, limits }
    }

    async fn inner_start(&self, request: pb::StartRequest) -> Result<Issued, SessionError> {
        let params = StartParams {
            user_id: self.limits.user_id("user_id", request.user_id)?,
            group: self.limits.group(request.group)?,
            ttl: validate::seconds("ttl_seconds", request.ttl_seconds)?,
            metadata: self.limits.map("metadata", request.metadata)?,
            attributes: self.limits.map("attributes", request.attributes)?,
        };
        self.manager.start(params).await
    }

    async fn inner_refresh(&self, request: pb::RefreshRequest) -> Result<Issued, SessionError> {
        let token = validate::token("refresh_token", TokenKind::Refresh, &request.refresh_token)?;
        self.manager.refresh(token).await
    }

    async fn inner_extend(
        &self,
        request: pb::ExtendRequest,
    ) -> Result<pb::ExtendResponse, SessionError> {
        let session_id = validate::session_id("session_id", &request.session_id)?;
        let keep_alive = validate::seconds("keep_alive_seconds", request.keep_alive_seconds)?;
        let extension = self.manager.extend(session_id, keep_alive).await?;
        Ok(pb::ExtendResponse {
            session: Some(extension.session.into()),
            extended: extension.extended,
        })
    }

    async fn inner_whoami(
        &self,
        request: pb::WhoamiRequest,
    ) -> Result<pb::WhoamiResponse, SessionError> {
        let token = validate::token("session_token", TokenKind::Session, &request.session_token)?;
        let session = self.manager.whoami(token).await?;
        Ok(pb::WhoamiResponse {
            expires_in_seconds: whole_seconds(session.expires_in),
            session: Some(session.into()),
        })
    }

    async fn inner_logout(
        &self,
        request: pb::LogoutRequest,
    ) -> Result<pb::LogoutResponse, SessionError> {
        let target = match (
            request.session_token.is_empty(),
            request.session_id.is_empty(),
        ) {
            (false, true) => LogoutTarget::Token(validate::token(
                "session_token",
                TokenKind::Session,
                &request.session_token,
            )?),
            (true, false) => {
                LogoutTarget::Id(validate::session_id("session_id", &request.session_id)?)
            }
            _ => {
                return Err(SessionError::invalid(
                    "session_token",
                    "or session_id: give exactly one of the two",
                ))
            }
        };
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
            .logout(target, request.all_for_user, except)
            .await?;
        Ok(pb::LogoutResponse { revoked_count })
    }

    async fn inner_refresh_all_for_user(
        &self,
        request: pb::RefreshAllForUserRequest,
    ) -> Result<pb::RefreshAllForUserResponse, SessionError> {
        let user_id = self.limits.user_id("user_id", request.user_id)?;
        let keep_alive = validate::seconds("keep_alive_seconds", request.keep_alive_seconds)?;
        let sessions = self
            .manager
            .refresh_all_for_user(&user_id, keep_alive)
            .await?;
        Ok(pb::RefreshAllForUserResponse {
            refreshed_count: u32::try_from(sessions.len()).unwrap_or(u32::MAX),
            sessions: sessions.into_iter().map(Into::into).collect(),
        })
    }

    async fn inner_list_user_sessions(
        &self,
        request: pb::ListUserSessionsRequest,
    ) -> Result<pb::ListUserSessionsResponse, SessionError> {
        let user_id = self.limits.user_id("user_id", request.user_id)?;
        let page_size = validate::page_size(request.page_size)?;
        let before = validate::page_token(&request.page_token)?;
        let page = self
            .manager
            .list_user_sessions(&user_id, page_size, before, request.include_inactive)
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

impl From<Issued> for pb::StartResponse {
    fn from(issued: Issued) -> Self {
        pb::StartResponse {
            expires_in_seconds: whole_seconds(issued.session.expires_in),
            session: Some(issued.session.into()),
            session_token: issued.session_token,
            refresh_token: issued.refresh_token,
        }
    }
}

impl From<Issued> for pb::RefreshResponse {
    fn from(issued: Issued) -> Self {
        pb::RefreshResponse {
            expires_in_seconds: whole_seconds(issued.session.expires_in),
            session: Some(issued.session.into()),
            session_token: issued.session_token,
            refresh_token: issued.refresh_token,
        }
    }
}

#[tonic::async_trait]
impl SessionService for SessionApi {
    async fn start(
        &self,
        request: Request<pb::StartRequest>,
    ) -> Result<Response<pb::StartResponse>, Status> {
        let issued = self.inner_start(request.into_inner()).await?;
        Ok(Response::new(issued.into()))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        let issued = self.inner_refresh(request.into_inner()).await?;
        Ok(Response::new(issued.into()))
    }

    async fn extend(
        &self,
        request: Request<pb::ExtendRequest>,
    ) -> Result<Response<pb::ExtendResponse>, Status> {
        Ok(Response::new(
            self.inner_extend(request.into_inner()).await?,
        ))
    }

    async fn whoami(
        &self,
        request: Request<pb::WhoamiRequest>,
    ) -> Result<Response<pb::WhoamiResponse>, Status> {
        Ok(Response::new(
            self.inner_whoami(request.into_inner()).await?,
        ))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        Ok(Response::new(
            self.inner_logout(request.into_inner()).await?,
        ))
    }

    async fn refresh_all_for_user(
        &self,
        request: Request<pb::RefreshAllForUserRequest>,
    ) -> Result<Response<pb::RefreshAllForUserResponse>, Status> {
        Ok(Response::new(
            self.inner_refresh_all_for_user(request.into_inner())
                .await?,
        ))
    }

    async fn list_user_sessions(
        &self,
        request: Request<pb::ListUserSessionsRequest>,
    ) -> Result<Response<pb::ListUserSessionsResponse>, Status> {
        Ok(Response::new(
            self.inner_list_user_sessions(request.into_inner()).await?,
        ))
    }
}
