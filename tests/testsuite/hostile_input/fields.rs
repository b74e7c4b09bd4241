//! Every field of every request, one property per call: arbitrary token texts, session
//! ids, user ids, groups, lifetimes, maps and cursors get the code the contract names.

use super::*;

on_backends!(whoami_with_any_token_text_is_invalid_argument_or_unauthenticated: sled, cluster; sync);
fn whoami_with_any_token_text_is_invalid_argument_or_unauthenticated() {
    let h = Harness::new();
    h.check(token_text("st_"), |token| {
        let result = h.block_on(whoami(&mut h.client(), &token));
        let expected = token_code("st_", &token);
        expect(&result, expected, "session_token", &token)
    });
}

on_backends!(refresh_with_any_token_text_is_invalid_argument_or_unauthenticated: sled, cluster; sync);
fn refresh_with_any_token_text_is_invalid_argument_or_unauthenticated() {
    let h = Harness::new();
    h.check(token_text("rt_"), |token| {
        let result = h.block_on(refresh(&mut h.client(), &token));
        let expected = token_code("rt_", &token);
        expect(&result, expected, "refresh_token", &token)
    });
}

on_backends!(logout_with_any_token_text_is_invalid_argument_or_unauthenticated: sled, cluster; sync);
fn logout_with_any_token_text_is_invalid_argument_or_unauthenticated() {
    let h = Harness::new();
    h.check(
        (token_text("st_"), any::<bool>()),
        |(token, all_for_user)| {
            let request = LogoutRequest {
                session_token: token.clone(),
                all_for_user,
                ..Default::default()
            };
            let result = h.block_on(logout(&mut h.client(), request));
            let expected = token_code("st_", &token);
            // Empty: neither token nor id was given, and the message names both.
            expect(&result, expected, "session_token", &token)
        },
    );
}

on_backends!(a_tampered_token_never_passes: sled, cluster; sync);
fn a_tampered_token_never_passes() {
    let h = Harness::new();
    let token = h.live.session_token.clone();
    let positions = 0..token.len();
    h.check((positions, any::<char>()), |(at, c)| {
        let mut tampered: Vec<char> = token.chars().collect();
        tampered[at] = c;
        let tampered: String = tampered.into_iter().collect();
        prop_assume!(tampered != token);
        let result = h.block_on(whoami(&mut h.client(), &tampered));
        let expected = token_code("st_", &tampered);
        expect(&result, expected, "session_token", &tampered)
    });
}

on_backends!(extend_with_any_session_id_and_keep_alive_gets_the_named_code: sled, cluster; sync);
fn extend_with_any_session_id_and_keep_alive_gets_the_named_code() {
    let h = Harness::new();
    let live_id = h.live_id();
    let ids = prop_oneof![session_id_text(), Just(live_id.clone())];
    h.check((ids, seconds()), |(id, keep_alive)| {
        let result = h.block_on(extend(&mut h.client(), &id, keep_alive));
        let live = id == live_id;
        let too_long = keep_alive.is_some_and(|s| s > DEFAULT_MAX_LIFETIME_S);
        Verdict::default()
            .must(uuid::Uuid::try_parse(&id).is_err(), "session_id")
            .must(keep_alive.is_some_and(|s| s < 1), "keep_alive_seconds")
            .must(live && too_long, "keep_alive_seconds")
            // Of an unknown session the group, and so its max_lifetime, is unknown.
            .may(too_long, "keep_alive_seconds")
            .judge(
                &result,
                if live { &[Code::Ok] } else { &[Code::NotFound] },
                &(&id, keep_alive),
            )
    });
}

on_backends!(logout_with_any_session_id_is_invalid_argument_or_not_found: sled, cluster; sync);
fn logout_with_any_session_id_is_invalid_argument_or_not_found() {
    let h = Harness::new();
    let excepts = prop_oneof![Just(String::new()), session_id_text()];
    h.check(
        (session_id_text(), excepts, any::<bool>()),
        |(id, except, all_for_user)| {
            let request = LogoutRequest {
                session_id: id.clone(),
                all_for_user,
                except_session_id: except.clone(),
                ..Default::default()
            };
            let result = h.block_on(logout(&mut h.client(), request.clone()));
            Verdict::default()
                .must(uuid::Uuid::try_parse(&id).is_err(), "session_id")
                .must(!except.is_empty() && !all_for_user, "except_session_id")
                .must(
                    !except.is_empty() && uuid::Uuid::try_parse(&except).is_err(),
                    "except_session_id",
                )
                .judge(&result, &[Code::NotFound], &request)
        },
    );
}

/// What the contract says of a user id: empty or over the limit must be refused;
/// blank or with control characters may be.
fn user_id_verdict(user: &str) -> Verdict {
    Verdict::default()
        .must(user.is_empty() || user.len() > MAX_USER_ID_BYTES, "user_id")
        .may(
            user.trim().is_empty() || user.chars().any(char::is_control),
            "user_id",
        )
}

on_backends!(start_with_any_user_id_is_ok_or_invalid_argument: sled, cluster; sync);
fn start_with_any_user_id_is_ok_or_invalid_argument() {
    let h = Harness::new();
    h.check(user_id_text(), |user| {
        let result = h.block_on(h.client().start(start_request(&user)));
        user_id_verdict(&user).judge(&result, &[Code::Ok], &user)
    });
}

on_backends!(refresh_all_with_any_user_id_is_invalid_argument_or_not_found: sled, cluster; sync);
fn refresh_all_with_any_user_id_is_invalid_argument_or_not_found() {
    let h = Harness::new();
    h.check((user_id_text(), seconds()), |(user, keep_alive)| {
        prop_assume!(user != "victim" && user != "after");
        let result = h.block_on(refresh_all(&mut h.client(), &user, keep_alive));
        user_id_verdict(&user)
            .must(keep_alive.is_some_and(|s| s < 1), "keep_alive_seconds")
            // With no session, no group's max_lifetime applies.
            .may(
                keep_alive.is_some_and(|s| s > DEFAULT_MAX_LIFETIME_S),
                "keep_alive_seconds",
            )
            .judge(&result, &[Code::NotFound], &(&user, keep_alive))
    });
}

on_backends!(list_with_any_user_page_token_and_size_is_ok_or_invalid_argument: sled, cluster; sync);
fn list_with_any_user_page_token_and_size_is_ok_or_invalid_argument() {
    let h = Harness::new();
    let page_tokens = prop_oneof![
        Just(String::new()),
        any::<String>(),
        any::<[u8; 16]>().prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        vec(any::<u8>(), 0..40).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        "[A-Za-z0-9_=+/-]{0,30}",
    ];
    let sizes = prop_oneof![any::<i32>(), -2i32..600];
    h.check(
        (user_id_text(), page_tokens, sizes, any::<bool>()),
        |(user, page_token, page_size, include_inactive)| {
            let request = ListUserSessionsRequest {
                user_id: user.clone(),
                page_size,
                page_token: page_token.clone(),
                include_inactive,
            };
            let result = h.block_on(h.client().list_user_sessions(request.clone()));
            let token_is_cursor = page_token.is_empty()
                || URL_SAFE_NO_PAD
                    .decode(&page_token)
                    .is_ok_and(|b| b.len() == 16);
            user_id_verdict(&user)
                .must(page_size < 0, "page_size")
                .must(!token_is_cursor, "page_token")
                // A cursor-shaped token this call never handed out.
                .may(!page_token.is_empty(), "page_token")
                .judge(&result, &[Code::Ok], &request)
        },
    );
}

on_backends!(start_with_any_group_and_ttl_is_ok_or_invalid_argument: sled, cluster; sync);
fn start_with_any_group_and_ttl_is_ok_or_invalid_argument() {
    let h = Harness::new();
    let groups = prop_oneof![
        Just(String::new()),
        Just("default".to_owned()),
        any::<String>(),
        ((MAX_GROUP_BYTES - 2)..(MAX_GROUP_BYTES + 3)).prop_map(|n| "g".repeat(n)),
    ];
    h.check((groups, seconds()), |(group, ttl_seconds)| {
        let request = StartRequest {
            user_id: "alice".into(),
            group: group.clone(),
            ttl_seconds,
            ..Default::default()
        };
        let result = h.block_on(h.client().start(request));
        Verdict::default()
            .must(!group.is_empty() && group != "default", "group")
            .must(!seconds_are_valid(ttl_seconds), "ttl_seconds")
            .judge(&result, &[Code::Ok], &(&group, ttl_seconds))
    });
}

/// Maps of any shape: empty keys, long keys and values, many entries, any characters.
fn string_map() -> impl Strategy<Value = HashMap<String, String>> {
    let keys = prop_oneof![
        Just(String::new()),
        "[a-z]{1,8}",
        (60usize..70).prop_map(|n| "k".repeat(n)),
        "\\PC{1,20}",
    ];
    let values = prop_oneof![
        "[ -~]{0,20}",
        (1000usize..1050).prop_map(|n| "v".repeat(n)),
        (250usize..260).prop_map(|n| "€".repeat(n)),
        "\\PC{0,40}",
    ];
    prop_oneof![
        hash_map(keys.clone(), values.clone(), 0..4),
        hash_map(keys, values, 28..40),
    ]
}

fn map_must_be_refused(map: &HashMap<String, String>) -> bool {
    map.len() > MAX_MAP_ENTRIES
        || map.iter().any(|(k, v)| {
            k.is_empty() || k.len() > MAX_MAP_KEY_BYTES || v.len() > MAX_MAP_VALUE_BYTES
        })
}

on_backends!(start_with_any_metadata_and_attributes_is_ok_or_invalid_argument_naming_the_map: sled, cluster; sync);
fn start_with_any_metadata_and_attributes_is_ok_or_invalid_argument_naming_the_map() {
    let h = Harness::new();
    h.check((string_map(), string_map()), |(metadata, attributes)| {
        let request = StartRequest {
            user_id: "alice".into(),
            metadata: metadata.clone(),
            attributes: attributes.clone(),
            ..Default::default()
        };
        let result = h.block_on(h.client().start(request));
        Verdict::default()
            .must(map_must_be_refused(&metadata), "metadata")
            .must(map_must_be_refused(&attributes), "attributes")
            .judge(&result, &[Code::Ok], &(metadata.len(), attributes.len()))
    });
}

on_backends!(watch_with_any_user_id_and_cursor_streams_or_gets_invalid_argument: sled, cluster; sync);
fn watch_with_any_user_id_and_cursor_streams_or_gets_invalid_argument() {
    let h = Harness::new();
    let head = h.block_on(async {
        let mut client = h.client();
        let mut events = watch_ok(&mut client, None, "").await;
        expect_caught_up(&mut events).await
    });
    let cursors = prop::option::of(prop_oneof![0..head + 3, any::<u64>()]);
    let users = prop_oneof![Just(String::new()), user_id_text()];
    h.check((users, cursors), |(user, after_cursor)| {
        let result = h.block_on(async {
            let mut client = h.client();
            let mut events = watch_sessions(&mut client, after_cursor, &user).await?;
            next_item(&mut events).await.map(|first| first.is_some())
        });
        let input = (&user, after_cursor);
        prop_assert!(
            !matches!(result, Ok(false)),
            "the stream for {:?} ended before its first event",
            input
        );
        let verdict = if user.is_empty() {
            Verdict::default()
        } else {
            user_id_verdict(&user)
        };
        verdict
            .must(after_cursor.is_some_and(|c| c > head), "after_cursor")
            .judge(&result, &[Code::Ok], &input)
    });
}
