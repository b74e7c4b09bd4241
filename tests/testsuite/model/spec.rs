//! The model: the session rules as the docs state them, over a map of sessions and a
//! clock, giving the answer each call must get.

use super::*;

/// A session as the model keeps it.
#[derive(Clone, Debug)]
pub(super) struct ModelSession {
    id: SessionId,
    user: String,
    group: String,
    revoked: bool,
    created_ms: u64,
    last_access_ms: u64,
    expires_ms: u64,
    max_expires_ms: u64,
    ttl_ms: u64,
    session_token: String,
    refresh_token: String,
    /// Refresh tokens rotated away: presenting one again is reuse.
    retired: Vec<String>,
    /// The open grace window of the last rotation: until when, and the successor pair
    /// its rotated-away token gets again. Closed when the successor is used.
    grace: Option<(u64, String, String)>,
}

/// The rules, over a map of stored sessions and a clock.
pub(super) struct Model {
    pub(super) now: u64,
    pub(super) sessions: BTreeMap<SessionId, ModelSession>,
}

impl Model {
    fn rules_of(s: &ModelSession) -> Rules {
        rules(&s.group)
    }

    /// When a session ends unless something happens: expiry or idle deadline.
    fn ends_at(s: &ModelSession) -> u64 {
        match Self::rules_of(s).idle {
            Some(idle) => s.expires_ms.min(s.last_access_ms + idle),
            None => s.expires_ms,
        }
    }

    fn state(&self, s: &ModelSession) -> SessionState {
        if s.revoked {
            SessionState::Revoked
        } else if self.now >= Self::ends_at(s) {
            SessionState::Expired
        } else {
            SessionState::Active
        }
    }

    fn active(&self, s: &ModelSession) -> bool {
        self.state(s) == SessionState::Active
    }

    fn view(&self, s: &ModelSession) -> View {
        View {
            id: s.id,
            user: s.user.clone(),
            group: s.group.clone(),
            state: self.state(s),
            created_ms: s.created_ms,
            last_access_ms: s.last_access_ms,
            expires_ms: s.expires_ms,
            max_expires_ms: s.max_expires_ms,
            ttl_ms: s.ttl_ms,
            expires_in_ms: Self::ends_at(s).saturating_sub(self.now),
        }
    }

    fn of_user<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a ModelSession> + 'a {
        self.sessions.values().filter(move |s| s.user == user)
    }

    /// Start; `issued` is what the server issued (its id and tokens), if it did.
    pub(super) fn start(
        &mut self,
        user: &str,
        group: &str,
        ttl: Option<u64>,
        issued: Option<(SessionId, String, String)>,
    ) -> Answer {
        let r = rules(group);
        let ttl = ttl.unwrap_or(r.lifespan);
        if ttl > r.max_lifetime {
            return Answer::Failed(Failure::InvalidArgument);
        }
        if let Some(max) = r.max_sessions {
            let mut active: Vec<(u64, SessionId)> = self
                .of_user(user)
                .filter(|s| self.active(s))
                .map(|s| (s.created_ms, s.id))
                .collect();
            active.sort();
            let excess = (active.len() + 1).saturating_sub(max);
            if excess > 0 && r.refuse_over_limit {
                return Answer::Failed(Failure::ResourceExhausted);
            }
            for (_, id) in active.into_iter().take(excess) {
                self.sessions.get_mut(&id).expect("stored").revoked = true;
            }
        }
        let (id, session_token, refresh_token) =
            issued.unwrap_or_else(|| (SessionId::nil(), String::new(), String::new()));
        let max_expires_ms = self.now + r.max_lifetime;
        let session = ModelSession {
            id,
            user: user.to_owned(),
            group: group.to_owned(),
            revoked: false,
            created_ms: self.now,
            last_access_ms: self.now,
            expires_ms: (self.now + ttl).min(max_expires_ms),
            max_expires_ms,
            ttl_ms: ttl,
            session_token,
            refresh_token,
            retired: Vec::new(),
            grace: None,
        };
        let view = self.view(&session);
        self.sessions.insert(id, session);
        Answer::Issued(view, None)
    }

    pub(super) fn whoami(&mut self, id: SessionId, token: &str) -> Answer {
        let now = self.now;
        let Some(s) = self.sessions.get(&id) else {
            return Answer::Failed(Failure::Unauthenticated);
        };
        if s.session_token != token || !self.active(s) {
            return Answer::Failed(Failure::Unauthenticated);
        }
        let touch_after = match Self::rules_of(s).idle {
            Some(idle) => TOUCH_MS.min(idle / 2),
            None => TOUCH_MS,
        };
        let s = self.sessions.get_mut(&id).expect("stored");
        if now - s.last_access_ms >= touch_after {
            s.last_access_ms = now;
        }
        // Using the successor closes the grace window of the token it replaced.
        s.grace = None;
        let s = &self.sessions[&id];
        Answer::Session(self.view(s))
    }

    /// Refresh; `issued` is the pair the server issued, if it did.
    pub(super) fn refresh(
        &mut self,
        id: SessionId,
        token: &str,
        issued: Option<(String, String)>,
    ) -> Answer {
        let now = self.now;
        let Some(s) = self.sessions.get(&id) else {
            return Answer::Failed(Failure::Unauthenticated);
        };
        let active = self.active(s);
        let grace = Self::rules_of(s).grace;
        let s = self.sessions.get_mut(&id).expect("stored");
        if s.refresh_token == token {
            if !active {
                return Answer::Failed(Failure::Unauthenticated);
            }
            let (session_token, refresh_token) = issued.unwrap_or_default();
            let retiring = std::mem::replace(&mut s.refresh_token, refresh_token.clone());
            s.retired.push(retiring);
            s.session_token = session_token.clone();
            s.last_access_ms = now;
            s.expires_ms = s.expires_ms.max((now + s.ttl_ms).min(s.max_expires_ms));
            s.grace = (grace > 0).then(|| (now + grace, session_token, refresh_token));
            let s = &self.sessions[&id];
            return Answer::Issued(self.view(s), None);
        }
        let just_rotated = s.retired.last().is_some_and(|t| t == token);
        if let Some((until, session_token, refresh_token)) = s.grace.clone() {
            if just_rotated && now < until && active {
                let s = &self.sessions[&id];
                return Answer::Issued(self.view(s), Some((session_token, refresh_token)));
            }
        }
        if !s.revoked && s.retired.iter().any(|t| t == token) {
            s.revoked = true;
            s.grace = None;
        }
        Answer::Failed(Failure::Unauthenticated)
    }

    /// The expiry Extend gives, if it moves.
    fn extended_expiry(&self, s: &ModelSession, keep_alive: Option<u64>) -> Option<u64> {
        let r = Self::rules_of(s);
        if s.expires_ms.saturating_sub(self.now) > r.window {
            return None;
        }
        let expiry = (self.now + keep_alive.unwrap_or(r.lifespan)).min(s.max_expires_ms);
        // Extend never shortens a session.
        (expiry > s.expires_ms).then_some(expiry)
    }

    pub(super) fn extend(&mut self, id: SessionId, keep_alive: Option<u64>) -> Answer {
        let Some(s) = self.sessions.get(&id) else {
            return Answer::Failed(Failure::NotFound);
        };
        if !self.active(s) {
            return Answer::Failed(Failure::FailedPrecondition);
        }
        if keep_alive.is_some_and(|k| k > Self::rules_of(s).max_lifetime) {
            return Answer::Failed(Failure::InvalidArgument);
        }
        let expiry = self.extended_expiry(s, keep_alive);
        let s = self.sessions.get_mut(&id).expect("stored");
        if let Some(expiry) = expiry {
            s.expires_ms = expiry;
        }
        let s = &self.sessions[&id];
        Answer::Extended(self.view(s), expiry.is_some())
    }

    pub(super) fn logout(
        &mut self,
        target: Result<(SessionId, &str), SessionId>,
        all_for_user: bool,
        except: Option<SessionId>,
    ) -> Answer {
        let (id, by_token) = match target {
            Ok((id, token)) => match self.sessions.get(&id) {
                Some(s) if s.session_token == token => (id, true),
                _ => return Answer::Failed(Failure::Unauthenticated),
            },
            Err(id) => match self.sessions.get(&id) {
                Some(_) => (id, false),
                None => return Answer::Failed(Failure::NotFound),
            },
        };
        let s = &self.sessions[&id];
        if !all_for_user {
            let active = self.active(s);
            if active {
                self.sessions.get_mut(&id).expect("stored").revoked = true;
            }
            return Answer::Count(u64::from(active));
        }
        if by_token && !self.active(s) {
            return Answer::Failed(Failure::Unauthenticated);
        }
        let user = s.user.clone();
        let ending: Vec<SessionId> = self
            .of_user(&user)
            .filter(|s| self.active(s) && Some(s.id) != except)
            .map(|s| s.id)
            .collect();
        for id in &ending {
            self.sessions.get_mut(id).expect("stored").revoked = true;
        }
        Answer::Count(ending.len() as u64)
    }

    pub(super) fn refresh_all(&mut self, user: &str, keep_alive: Option<u64>) -> Answer {
        let active: Vec<SessionId> = self
            .of_user(user)
            .filter(|s| self.active(s))
            .map(|s| s.id)
            .collect();
        if active.is_empty() {
            return Answer::Failed(Failure::NotFound);
        }
        let mut extended = Vec::new();
        for id in &active {
            let s = &self.sessions[id];
            if keep_alive.is_some_and(|k| k > Self::rules_of(s).max_lifetime) {
                return Answer::Failed(Failure::InvalidArgument);
            }
            if let Some(expiry) = self.extended_expiry(s, keep_alive) {
                extended.push((*id, expiry));
            }
        }
        let mut views = Vec::new();
        for (id, expiry) in extended {
            self.sessions.get_mut(&id).expect("stored").expires_ms = expiry;
            views.push(self.view(&self.sessions[&id]));
        }
        Answer::Sessions(views)
    }

    /// A user's sessions, newest (highest id) first.
    pub(super) fn list(&self, user: &str, include_inactive: bool) -> Vec<View> {
        let mut views: Vec<View> = self
            .of_user(user)
            .filter(|s| include_inactive || self.active(s))
            .map(|s| self.view(s))
            .collect();
        views.sort_by_key(|view| std::cmp::Reverse(view.id));
        views
    }

    pub(super) fn sweep(&mut self) -> Answer {
        let now = self.now;
        let before = self.sessions.len();
        self.sessions.retain(|_, s| s.expires_ms > now);
        Answer::Count((before - self.sessions.len()) as u64)
    }
}
