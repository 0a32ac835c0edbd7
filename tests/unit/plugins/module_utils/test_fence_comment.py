"""The fence record kept in a role's comment."""

from ansible_collections.sysgenpro.odoo_migration.plugins.module_utils import _cutover


def test_fence_comment_round_trips():
    record = {"databases": ["acme", "globex"], "attributes": {"rolcanlogin": True, "rolconnlimit": -1}}
    comment = _cutover.fence_comment(record)
    assert comment.startswith(_cutover.FENCE_COMMENT_PREFIX)
    assert _cutover.parse_fence_comment(comment) == record


def test_an_operator_comment_is_not_a_fence():
    assert _cutover.parse_fence_comment("Odoo application role, owner: ops") is None
    assert _cutover.parse_fence_comment(" odoo-migration-fence:{}") is None


def test_no_comment_is_not_a_fence():
    assert _cutover.parse_fence_comment(None) is None
    assert _cutover.parse_fence_comment("") is None
