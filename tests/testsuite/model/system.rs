//! The system under test (the rules over a store on a manual clock), one step of both
//! per operation, and the property that their answers and final states agree, on each
//! store.

use super::spec::Model;
use super::*;

/// The system under test: the rules over a store of the test's backend (sled in a temp
/// dir, or the test Redis under a fresh key prefix), on a manual clock.
struct System {
    manager: SessionManager,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl System {
    async fn new() -> System {
        let dir = tempfile::tempdir().expect("temp dir");
        let toml = common::toml_for(common::backend(), "", &common::unique_key_prefix());
        let mut config = Config::from_toml_str(&toml).expect("valid store config");
        config.data_dir = dir.path().to_path_buf();
        let clock = Arc::new(ManualClock::new(START_MS));
        let store = common::open_store(&config, Durability::Periodic, clock.clone()).await;
        let manager = SessionManager::new(
            store,
            policies(),
            clock.clone(),
            ManagerSettings {
                touch_interval: Duration::from_millis(TOUCH_MS),
                ..ManagerSettings::default()
            },
        );
        System {
            manager,
            clock,
            _dir: dir,
        }
    }

    async fn list(&self, user: &str, include_inactive: bool, page_size: usize) -> Vec<View> {
        let mut views = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .manager
                .list_user_sessions(Acting::ANONYMOUS, user, page_size, before, include_inactive)
                .await
                .expect("list succeeds");
            assert!(page.sessions.len() <= page_size, "page over its size");
            views.extend(page.sessions.iter().map(View::from));
            match page.next {
                Some(next) => before = Some(next),
                None => return views,
            }
        }
    }
}

/// Tokens and sessions issued so far, for the steps to aim at.
#[derive(Default)]
struct Issued {
    session_tokens: Vec<(SessionId, String)>,
    refresh_tokens: Vec<(SessionId, String)>,
    sessions: Vec<SessionId>,
}

fn secs(n: Option<u64>) -> Option<Duration> {
    n.map(Duration::from_secs)
}

fn ms(n: Option<u64>) -> Option<u64> {
    n.map(|s| s * SECOND_MS)
}

fn parse(kind: TokenKind, text: &str) -> Token {
    Token::parse(kind, text).expect("the server's own token parses")
}

/// Runs one step on the system and the model; returns both answers.
async fn step(
    system: &System,
    model: &mut Model,
    issued: &mut Issued,
    op: &Op,
) -> (Answer, Answer) {
    let access = Acting::ANONYMOUS;
    let m = &system.manager;
    match op {
        Op::Start { user, group, ttl_s } => {
            let params = StartParams {
                user_id: USERS[*user].to_owned(),
                group: Some(GROUPS[*group].to_owned()),
                ttl: secs(*ttl_s),
                ..Default::default()
            };
            match m.start(access, params).await {
                Ok(new) => {
                    let view = View::from(&new.session);
                    issued.sessions.push(view.id);
                    issued
                        .session_tokens
                        .push((view.id, new.session_token.clone()));
                    issued
                        .refresh_tokens
                        .push((view.id, new.refresh_token.clone()));
                    let expected = model.start(
                        USERS[*user],
                        GROUPS[*group],
                        ms(*ttl_s),
                        Some((view.id, new.session_token, new.refresh_token)),
                    );
                    (Answer::Issued(view, None), expected)
                }
                Err(error) => {
                    let expected = model.start(USERS[*user], GROUPS[*group], ms(*ttl_s), None);
                    (Answer::Failed(error.into()), expected)
                }
            }
        }
        Op::Whoami { token } => {
            if issued.session_tokens.is_empty() {
                return (Answer::Nothing, Answer::Nothing);
            }
            let (id, text) =
                issued.session_tokens[token.index(issued.session_tokens.len())].clone();
            let actual = match m
                .whoami(access, parse(TokenKind::Session, &text), None, None)
                .await
            {
                Ok(snapshot) => Answer::Session(View::from(&snapshot)),
                Err(error) => Answer::Failed(error.into()),
            };
            (actual, model.whoami(id, &text))
        }
        Op::Refresh { token } => {
            if issued.refresh_tokens.is_empty() {
                return (Answer::Nothing, Answer::Nothing);
            }
            let (id, text) =
                issued.refresh_tokens[token.index(issued.refresh_tokens.len())].clone();
            match m
                .refresh(
                    access,
                    parse(TokenKind::Refresh, &text),
                    None,
                    false,
                    None,
                    None,
                )
                .await
            {
                Ok(new) => {
                    let pair = (new.session_token, new.refresh_token);
                    let expected = model.refresh(id, &text, Some(pair.clone()));
                    let known = matches!(expected, Answer::Issued(_, Some(_)));
                    if !known {
                        // A rotation hands out tokens never seen before.
                        let seen = issued.session_tokens.iter().any(|(_, t)| *t == pair.0)
                            || issued.refresh_tokens.iter().any(|(_, t)| *t == pair.1);
                        assert!(!seen, "a rotation handed out a token issued before");
                        issued.session_tokens.push((id, pair.0.clone()));
                        issued.refresh_tokens.push((id, pair.1.clone()));
                    }
                    let view = View::from(&new.session);
                    (Answer::Issued(view, known.then_some(pair)), expected)
                }
                Err(error) => (Answer::Failed(error.into()), model.refresh(id, &text, None)),
            }
        }
        Op::Extend {
            session,
            keep_alive_s,
        } => {
            if issued.sessions.is_empty() {
                return (Answer::Nothing, Answer::Nothing);
            }
            let id = issued.sessions[session.index(issued.sessions.len())];
            let actual = match m.extend(access, id, secs(*keep_alive_s)).await {
                Ok(extension) => {
                    Answer::Extended(View::from(&extension.session), extension.extended)
                }
                Err(error) => Answer::Failed(error.into()),
            };
            (actual, model.extend(id, ms(*keep_alive_s)))
        }
        Op::Logout {
            by_token,
            target,
            all_for_user,
            except,
        } => {
            if issued.sessions.is_empty() {
                return (Answer::Nothing, Answer::Nothing);
            }
            let except = except.map(|i| issued.sessions[i.index(issued.sessions.len())]);
            let except = except.filter(|_| *all_for_user);
            if *by_token {
                let (id, text) =
                    issued.session_tokens[target.index(issued.session_tokens.len())].clone();
                let token = LogoutTarget::Token(parse(TokenKind::Session, &text));
                let actual = match m.logout(access, token, *all_for_user, except).await {
                    Ok(count) => Answer::Count(u64::from(count)),
                    Err(error) => Answer::Failed(error.into()),
                };
                (actual, model.logout(Ok((id, &text)), *all_for_user, except))
            } else {
                let id = issued.sessions[target.index(issued.sessions.len())];
                let actual = match m
                    .logout(access, LogoutTarget::Id(id), *all_for_user, except)
                    .await
                {
                    Ok(count) => Answer::Count(u64::from(count)),
                    Err(error) => Answer::Failed(error.into()),
                };
                (actual, model.logout(Err(id), *all_for_user, except))
            }
        }
        Op::RefreshAll { user, keep_alive_s } => {
            let actual = match m
                .refresh_all_for_user(access, USERS[*user], secs(*keep_alive_s))
                .await
            {
                Ok(snapshots) => {
                    let mut views: Vec<View> = snapshots.iter().map(View::from).collect();
                    views.sort_by_key(|v| v.id);
                    Answer::Sessions(views)
                }
                Err(error) => Answer::Failed(error.into()),
            };
            let mut expected = model.refresh_all(USERS[*user], ms(*keep_alive_s));
            if let Answer::Sessions(views) = &mut expected {
                views.sort_by_key(|v| v.id);
            }
            (actual, expected)
        }
        Op::List {
            user,
            include_inactive,
            page_size,
        } => (
            Answer::Sessions(
                system
                    .list(USERS[*user], *include_inactive, *page_size)
                    .await,
            ),
            Answer::Sessions(model.list(USERS[*user], *include_inactive)),
        ),
        Op::Advance { secs } => {
            system.clock.advance(Duration::from_secs(*secs));
            model.now += secs * SECOND_MS;
            (Answer::Nothing, Answer::Nothing)
        }
        Op::Sweep => {
            let actual = match m.sweep(SWEEP_BATCH).await {
                Ok(removed) => Answer::Count(removed as u64),
                Err(error) => Answer::Failed(error.into()),
            };
            (actual, model.sweep())
        }
    }
}

/// Runs `ops` on a fresh system and model; the first disagreement, if any.
async fn run(ops: &[Op]) -> Result<(), String> {
    let system = System::new().await;
    let mut model = Model {
        now: START_MS,
        sessions: BTreeMap::new(),
    };
    let mut issued = Issued::default();
    for (i, op) in ops.iter().enumerate() {
        let (actual, expected) = step(&system, &mut model, &mut issued, op).await;
        if actual != expected {
            return Err(format!(
                "step {i} {op:?}:\n  server: {actual:?}\n  model:  {expected:?}"
            ));
        }
    }
    for user in USERS {
        let actual = system.list(user, true, 50).await;
        let expected = model.list(user, true);
        if actual != expected {
            return Err(format!(
                "final sessions of {user}:\n  server: {actual:?}\n  model:  {expected:?}"
            ));
        }
    }
    let store = system.manager.store();
    for id in &issued.sessions {
        let stored = store.get(*id).await.expect("get").is_some();
        if stored != model.sessions.contains_key(id) {
            return Err(format!("session {id}: stored {stored}, model disagrees"));
        }
    }
    let report = store.check_consistency().await.expect("consistency check");
    let expected = model.sessions.len() as u64;
    if report.orphans != 0
        || report.sessions != expected
        || report.user_index_entries != expected
        || report.expiry_index_entries != expected
    {
        return Err(format!(
            "store inconsistent with {expected} sessions: {report:?}"
        ));
    }
    Ok(())
}

on_backends!(session_rules_match_the_model: sled, redis, cluster; sync);
fn session_rules_match_the_model() {
    let config = ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in vec(op(), 1..40))| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let bounded = async { tokio::time::timeout(Duration::from_secs(20), run(&ops)).await };
        match rt.block_on(bounded) {
            Ok(Ok(())) => {}
            Ok(Err(disagreement)) => return Err(TestCaseError::fail(disagreement)),
            Err(_) => return Err(TestCaseError::fail("the run did not finish within 20 s")),
        }
    });
}
