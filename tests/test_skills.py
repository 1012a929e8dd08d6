"""The skills loader: ours by default, a target checkout's .ai/ docs first, ours filling gaps."""

from agent.checks.registry import RULES, resolve_ids
from agent.skills import load_skills, skills_index

REQUIRED = {"AGENTS.md", "models.md", "pipelines.md", "pitfalls.md", "review.md"}


def test_ours_by_default():
    skills = load_skills()
    assert REQUIRED <= set(skills)
    assert all(s.source == "integrate" for s in skills.values())
    assert "attention-dispatch" in skills["models.md"].anchors


def test_every_rule_points_at_an_existing_anchor():
    skills = load_skills()
    resolve_ids([])
    for rule in RULES.values():
        doc, anchor = rule.anchor.split("#")
        assert anchor in skills[doc].anchors, rule.id


def test_target_ai_folder_wins_and_ours_fill_the_rest(tmp_path):
    ai = tmp_path / ".ai"
    ai.mkdir()
    (ai / "models.md").write_text('# Maintainers\' model notes\n\n<a id="mixins"></a>\n## Mixins\n\nUse ModelMixin.\n')
    (ai / "modular.md").write_text("# Modular pipelines\n")
    skills = load_skills(tmp_path)
    assert skills["models.md"].source == str(ai) and "Maintainers" in skills["models.md"].text
    assert skills["modular.md"].source == str(ai)
    assert skills["pipelines.md"].source == "integrate"  # missing there: ours
    index = skills_index(skills)
    assert "models.md" in index and "#mixins: Mixins" in index
