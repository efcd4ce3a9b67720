//! The directory: what other crates (members, notify, portfolio) read and
//! change of this crate's users, on a connection of their own transaction.
use rampart_auth::directory;
use rampart_auth::{AuthError, Role};
use rampart_testkit::{acme, globex};

use crate::common::{PASSWORD, server};

#[tokio::test(flavor = "multi_thread")]
async fn accounts_are_read_and_changed_through_the_directory_in_one_tenant() {
    let s = server().await;
    let a = &s.auth;
    let ada = a
        .register(&acme(), "ada@example.com", "Ada", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let bot = a
        .register(&acme(), "bot@example.com", "Bot", PASSWORD, Role::ApiUser)
        .await
        .unwrap();
    a.register(&globex(), "gil@example.com", "Gil", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let pool = a.pool();
    pool.with_tenant(&acme(), async |conn| {
        // A new address makes a pending account; the same one again (any
        // case) renames it; a machine client's address is left alone.
        let (new, created) = directory::upsert_pending(conn, "new@example.com", "New", "viewer")
            .await?
            .unwrap();
        assert!(created);
        let (same, created) =
            directory::upsert_pending(conn, "NEW@example.com", "Renamed", "trader")
                .await?
                .unwrap();
        assert_eq!((same, created), (new, false));
        let renamed = directory::account(conn, new).await?.unwrap();
        assert_eq!(
            (
                renamed.display_name.as_str(),
                renamed.role.as_str(),
                renamed.status.as_str()
            ),
            ("Renamed", "trader", "pending")
        );
        assert_eq!(
            directory::upsert_pending(conn, "bot@example.com", "Taken", "admin").await?,
            None
        );
        assert_eq!(
            directory::account(conn, bot.id).await?.unwrap().role,
            "api_user"
        );

        // People are paged by address, without machine clients; a user of
        // another tenant is not in this one.
        let people = directory::people_after(conn, "", 10).await?;
        let emails: Vec<&str> = people.iter().map(|p| p.email.as_str()).collect();
        assert_eq!(emails, ["ada@example.com", "new@example.com"]);
        let after_ada = directory::people_after(conn, "ada@example.com", 10).await?;
        assert_eq!(after_ada.len(), 1);
        let by_email = directory::accounts_by_email(
            conn,
            &["ada@example.com".into(), "gil@example.com".into()],
            true,
        )
        .await?;
        assert_eq!(by_email.len(), 1);
        assert_eq!(by_email["ada@example.com"].id, ada.id);

        // Active users and their addresses; a pending one is neither.
        assert!(directory::is_active(conn, ada.id).await?);
        assert!(!directory::is_active(conn, new).await?);
        let addresses = directory::active_addresses(conn, &[ada.id, new]).await?;
        assert_eq!(addresses.len(), 1);
        assert_eq!(addresses[&ada.id], "ada@example.com");
        let contact = directory::active_contact_by_email(conn, "ada@example.com").await?;
        assert_eq!(contact.map(|c| c.id), Some(ada.id));
        assert!(directory::lock_user(conn, ada.id).await?);

        // The leaderboard flag of rampart-members lives on the user.
        assert!(
            directory::leaderboard_opt_outs(conn, &[ada.id])
                .await?
                .is_empty()
        );
        assert!(directory::set_leaderboard_opt_out(conn, ada.id, true).await?);
        assert_eq!(
            directory::leaderboard_opt_outs(conn, &[ada.id, new]).await?,
            [ada.id]
        );
        assert!(
            !directory::set_leaderboard_opt_out(conn, uuid::Uuid::new_v4().into(), true).await?
        );
        let names = directory::display_names(conn, &[ada.id, new]).await?;
        assert_eq!(
            (names[&ada.id].as_str(), names[&new].as_str()),
            ("Ada", "Renamed")
        );

        // A verification link is for an unverified address only, and marks
        // it verified once; a reset sets the hash of an active account.
        assert!(directory::unverified_contact(conn, ada.id).await?.is_none());
        let pending = directory::unverified_contact(conn, new).await?.unwrap();
        assert_eq!(pending.email, "new@example.com");
        assert!(!directory::mark_email_verified(conn, new, "other@example.com").await?);
        assert!(directory::mark_email_verified(conn, new, "New@Example.com").await?);
        assert!(directory::unverified_contact(conn, new).await?.is_none());
        assert!(!directory::reset_password_hash(conn, new, "$argon2id$x").await?);
        Ok::<_, AuthError>(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_since_lists_new_logins_with_addresses_except_those_seen() {
    let s = server().await;
    let a = &s.auth;
    a.register(&acme(), "ada@example.com", "Ada", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let ctx = crate::common::ctx("203.0.113.7");
    for _ in 0..2 {
        a.login(&acme(), "ada@example.com", PASSWORD, &ctx)
            .await
            .unwrap();
    }
    a.pool()
        .with_tenant(&acme(), async |conn| {
            let all = directory::sessions_since(conn, before, &[], 10).await?;
            assert_eq!(all.len(), 2);
            assert!(all.iter().all(|s| s.email == "ada@example.com"));
            assert_eq!(all[0].ip.as_deref(), Some("203.0.113.7"));
            let unseen = directory::sessions_since(conn, before, &[all[0].id], 10).await?;
            assert_eq!(unseen.len(), 1);
            assert_ne!(unseen[0].id, all[0].id);
            assert!(
                directory::sessions_since(conn, chrono::Utc::now(), &[], 10)
                    .await?
                    .is_empty()
            );
            Ok::<_, AuthError>(())
        })
        .await
        .unwrap();
}
