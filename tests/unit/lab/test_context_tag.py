import os

from context_tag import context_tag


def make_context(root):
    (root / "files").mkdir()
    (root / "Dockerfile").write_text("FROM base\n")
    (root / "files" / "app.conf").write_text("workers = 2\n")
    return root


def test_same_context_same_tag(tmp_path):
    context = make_context(tmp_path)
    assert context_tag(str(context), ["base-id"]) == context_tag(str(context), ["base-id"])


def test_tag_changes_with_content_mode_and_base(tmp_path):
    context = make_context(tmp_path)
    original = context_tag(str(context), ["base-id"])
    assert context_tag(str(context), ["other-base-id"]) != original
    os.chmod(context / "Dockerfile", 0o755)
    moded = context_tag(str(context), ["base-id"])
    assert moded != original
    (context / "files" / "app.conf").write_text("workers = 4\n")
    assert context_tag(str(context), ["base-id"]) not in (original, moded)
