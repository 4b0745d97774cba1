//! One conformance suite for every [`Store`](tagd_core::Store) backend.
//!
//! `suite` holds the behaviours, each an `async fn` taking the store under test; `harness`
//! makes a fresh store per test (a new SQLite file, or a new PostgreSQL schema when
//! `TAGD_TEST_POSTGRES_URL` is set); [`conformance!`] turns the suite into `#[tokio::test]`s
//! for one backend. The HTTP tests reuse the harness so they too run on both backends.
#![forbid(unsafe_code)]

pub mod harness;
pub mod suite;

/// Expands to one `#[tokio::test]` per behaviour of [`suite`], on the named backend
/// (`sqlite` or `postgres`).
#[macro_export]
macro_rules! conformance {
    ($backend:ident) => {
        $crate::conformance!(@tests $backend:
            an_organization_gets_a_32_hex_corp_id_and_is_found_by_it,
            creating_the_same_user_twice_is_idempotent,
            apps_credentials_and_tokens_are_found_by_their_public_keys_only,
            revoking_tokens_marks_only_that_apps_tokens_in_that_organization,
            a_basic_credential_user_name_is_unique_across_the_server,
            the_admin_token_hash_is_stored_once,
            a_new_tag_group_is_active_custom_unlocked_at_version_zero,
            names_and_variable_names_are_unique_per_organization_only,
            tag_groups_are_listed_by_category_in_ctime_then_entity_id_order_with_a_total,
            updating_a_group_bumps_its_version_and_refuses_a_stale_one,
            the_attribute_cannot_change_while_live_assignments_exist,
            an_inactive_group_refuses_assignments_and_activation_is_idempotent,
            a_locked_group_refuses_edits_and_activation_but_takes_assignments,
            a_batch_of_groups_skips_names_in_use_and_creates_the_rest_together,
            assigning_parses_the_value_and_refuses_unknown_groups_and_users,
            reassigning_keeps_the_entity_id_bumps_the_version_and_records_history,
            removing_soft_deletes_and_a_later_assign_revives_the_same_row,
            one_organization_can_neither_read_nor_change_another_organizations_rows,
            concurrent_reassignments_of_one_pair_lose_no_update,
            concurrent_assignments_to_distinct_users_all_succeed,
            a_batch_applies_its_valid_items_and_refuses_the_others_one_by_one,
            change_labels_sets_known_labels_and_warns_about_unknown_ones_in_request_order,
            a_label_added_and_removed_in_one_request_records_both_changes_in_order,
            removing_from_a_customer_without_labels_warns_33001_once,
            adding_a_carried_label_again_changes_nothing,
            change_labels_for_an_unknown_customer_is_refused_and_changes_nothing,
            inactive_groups_and_typed_groups_are_not_labels,
            label_holders_are_paged_in_numeric_customer_order_ignoring_label_case,
            labels_of_one_organization_are_invisible_to_another,
            an_import_registers_users_and_sets_values_with_source_import,
            importing_the_same_rows_again_changes_nothing,
            refused_rows_carry_their_reason_and_the_others_load,
            rows_of_one_pair_apply_in_order_each_with_its_history_entry,
            an_import_into_one_organization_never_touches_another,
            export_pages_by_key_through_live_assignments_then_bare_users,
            concurrent_imports_of_the_same_rows_write_each_change_once,
            label_search_matches_names_by_prefix_ignoring_case_with_wildcards_taken_literally,
            label_search_pages_by_customer_key_without_repeating_a_customer,
            the_tag_group_cap_holds_under_concurrent_creates,
            rotating_deleting_and_disabling_take_every_secret_back,
            expired_tokens_are_purged_and_live_ones_kept,
            organizations_are_listed_with_counts_of_what_they_hold,
        );
    };
    (@tests $backend:ident: $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let Some(fixture) = $crate::harness::$backend().await else {
                    return;
                };
                $crate::suite::$test(fixture.store.clone()).await;
                fixture.cleanup().await;
            }
        )*
    };
}

#[cfg(test)]
mod registration {
    use std::collections::BTreeSet;

    /// The suite's files, each with its `mod` line in `suite/mod.rs` (checked below).
    const SUITE_FILES: [(&str, &str); 7] = [
        ("assignments", include_str!("suite/assignments.rs")),
        ("bulk", include_str!("suite/bulk.rs")),
        ("groups", include_str!("suite/groups.rs")),
        ("identity", include_str!("suite/identity.rs")),
        ("labels", include_str!("suite/labels.rs")),
        ("security", include_str!("suite/security.rs")),
        ("tenancy", include_str!("suite/tenancy.rs")),
    ];

    fn defined_behaviours() -> BTreeSet<String> {
        SUITE_FILES
            .iter()
            .flat_map(|(_, source)| source.lines())
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split('(').next())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    fn registered_behaviours() -> Vec<String> {
        let lib = include_str!("lib.rs");
        let list = lib
            .split("$crate::conformance!(@tests $backend:")
            .nth(1)
            .and_then(|rest| rest.split(");").next())
            .unwrap_or_default();
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// A behaviour written and not listed in `conformance!` would never run, on any backend;
    /// one listed twice would run twice. Neither compiles into a failure by itself.
    #[test]
    fn every_suite_behaviour_is_registered_once_in_the_conformance_macro() {
        let registered = registered_behaviours();
        let unique: BTreeSet<String> = registered.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            registered.len(),
            "a behaviour is listed twice"
        );
        let defined = defined_behaviours();
        let missing: Vec<_> = defined.difference(&unique).collect();
        assert!(missing.is_empty(), "defined but never run: {missing:?}");
        assert_eq!(defined, unique);
        assert!(defined.len() >= 40, "{} behaviours found", defined.len());
    }

    #[test]
    fn every_suite_module_is_read_by_the_registration_check() {
        let declared: BTreeSet<&str> = include_str!("suite/mod.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("mod "))
            .map(|name| name.trim_end_matches(';'))
            .collect();
        let read: BTreeSet<&str> = SUITE_FILES.iter().map(|(name, _)| *name).collect();
        assert_eq!(declared, read, "add the new suite file to SUITE_FILES");
    }
}
