"""The safety layer's detector: rules, model and ages combined; pinned on the held-out set."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bot.flood import FloodGuard, Verdict
from nlu.cli import is_safety_file, safety_test_command
from nlu.normalize import normalize
from nlu.safeguard import EmbeddedSafety, SafetyAssessment
from nlu.safety import default_safety_net
from nlu.safety_eval import evaluate
from nlu.safety_model import read_safety_jsonl, training_files

HELDOUT = Path(__file__).resolve().parents[2] / "nlu" / "tests" / "safety_heldout.jsonl"

SELF_HARM = [
    "مش عايز اعيش", "نفسي اموت", "هنتحر", "بفكر في الانتحار", "ما بدي عيش", "لا أريد أن أعيش",
    "3ayez amoot", "msh 3ayez a3ish", "hantehar", "I don't want to live anymore",
    "i want to die", "I'm going to kill myself", "je veux mourir", "j'ai envie d'en finir",
    "je vais me suicider", "je me scarifie", "la mort serait un soulagement",
    "i'd be better off dead", "death would be a relief",
    # round 6: indirect and misspelled
    "نفسي انام ومصحاش", "لا أملك سبباً واحداً للبقاء", "nefsy anam w ma as7ash tany", "ha2zy nafsy",
    "bagra7 edi bel mos", "daayr amut", "fkrt ent7r ktir", "suiside is the only way for me now",
    "I'd rather be dead than go back", "i keep cutting my arms",
    "I just want to sleep and never wake up",
    "à quoi bon se lever demain", "je me brûle avec des cigarettes",
    "j'ai envie de dormir et de ne jamais me réveiller",
    # round 7: French
    "j'en ai marre de vivre", "je suis fatiguée de vivre", "je vais me foutre en l'air",
    "j'ai envie de me jeter sous un train", "je pense à me pendre",
    "je n'ai plus aucune raison de vivre", "j'ai écrit ma lettre d'adieu",
]
NOT_SELF_HARM = [
    "انا عايز اموت من الضحك", "what is suicide", "the suicide rate in Egypt",
    "I want to die laughing", "je meurs de faim", "I want to live in Italy",
    "la mort de mon père a été un choc", "better off without that job",
    "i cut my hair", "je me coupe les cheveux", "what is the suicide rate",
    "je suis fatigué de ce travail", "il a sauté du pont de bungee, trop cool",
    "le héros écrit une lettre d'adieu dans le film", "on va sauter du plongeoir",
]


@pytest.mark.parametrize("text", SELF_HARM)
def test_self_harm_rules_fire(text: str) -> None:
    assert default_safety_net().fired(normalize(text)).get("self_harm")


@pytest.mark.parametrize("text", NOT_SELF_HARM)
def test_self_harm_rules_stay_quiet(text: str) -> None:
    assert "self_harm" not in default_safety_net().fired(normalize(text))


@pytest.mark.parametrize("text", ["this exam is killing me 😂", "الحر ده هيموتني",
                                  "cet exam va me tuer", "the news says a boat sank",
                                  "هههه اخوي بيذبحني لو عرف", "الدوام اليوم يذبح",
                                  "ma mère va me tuer si je rate le bac",
                                  "ahly el naharda mawetna mn el 2ahr",
                                  "I'm drowning in paperwork this week",
                                  "I'm dying to see my family",
                                  "هموت على حتة شوكولاتة", "ana bamoot fel koshary",
                                  "je tuerais pour un café",
                                  "سمعت عن المركب يلي غرق قدام اليونان؟ الله يرحمهن",
                                  "2areet 5abar 3an markab 3'eri2"])
def test_figurative_context_is_recognised(text: str) -> None:
    assert default_safety_net().figurative(normalize(text))


def test_a_stated_adult_age_overrules_the_model(safety_detector: EmbeddedSafety) -> None:
    adult = safety_detector.assess("I'm 24 and a man offered me a job in Libya")
    assert "minor" not in adult and adult.age == 24
    child = safety_detector.assess("I'm 15 and a man offered me a job in Libya")
    assert "minor" in child and child.age == 15


def test_a_woman_is_context_never_an_alarm(safety_detector: EmbeddedSafety) -> None:
    found = safety_detector.assess("انا ست")
    assert "woman" in found.ruled and "woman" not in found.labels


def test_only_rules_drops_the_models_guesses() -> None:
    found = SafetyAssessment(labels=frozenset({"emergency", "grey"}),
                             doubts=frozenset({"self_harm"}), ruled=frozenset({"grey"}))
    reduced = found.only_rules()
    assert reduced.labels == {"grey"} and not reduced.doubts


def test_empty_and_junk_input_is_clear(safety_detector: EmbeddedSafety) -> None:
    for text in ("", "   ", "🙂🙂", "x" * 5000, "\x00\x01"):
        found = safety_detector.assess(text)
        assert not found.urgent


async def test_an_urgent_message_passes_an_empty_bucket() -> None:
    guard = FloodGuard(rate=0.001, burst=1, max_wait=0.0)
    assert await guard.admit("u") is Verdict.PROCESS
    assert await guard.admit("u") is not Verdict.PROCESS
    assert await guard.admit("u", urgent=True) is Verdict.PROCESS


def test_recall_and_false_alarms_on_the_held_out_set(safety_detector: EmbeddedSafety) -> None:
    """Pins today's held-out figures (docs/safety.md has the full table): a change that
    loses recall or adds false alarms fails here. Never trained on: nlu/tests/."""
    report = evaluate(safety_detector, read_safety_jsonl(HELDOUT))
    labels = report["labels"]
    assert labels["emergency"]["recall"] >= 0.95  # round 7: 0.960 (docs/safety.md)
    assert labels["emergency"]["covered"] >= 0.965
    assert labels["self_harm"]["recall"] >= 0.94
    assert labels["self_harm"]["covered"] >= 0.965
    assert labels["minor"]["recall"] >= 0.905
    assert labels["child_at_risk"]["recall"] >= 0.88
    assert labels["grey"]["covered"] >= 0.89
    assert report["hard_negatives"]["false_alarm_rate"] <= 0.06
    assert report["ages"]["exact"] >= 0.945


def test_nlu_test_reports_a_safety_file(safety_detector: EmbeddedSafety,
                                        tmp_path: Path) -> None:
    data = tmp_path / "s.jsonl"
    rows = [{"text": "they locked me in", "labels": ["emergency"], "variety": "en"},
            {"text": "hello", "labels": [], "variety": "en"}]
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert is_safety_file(data) and not is_safety_file(HELDOUT.with_name("heldout.yml"))
    out = io.StringIO()
    assert safety_test_command(safety_detector, data, out, as_json=True) == 0
    report = json.loads(out.getvalue())
    assert report["labels"]["emergency"]["recall"] == 1.0
    assert report["hard_negatives"]["false_alarm_rate"] == 0.0


def test_a_literal_danger_in_a_joking_context_is_asked_about(
    safety_detector: EmbeddedSafety,
) -> None:
    """'They locked me in 😂' may be a joke or a cover: ask, never drop; an everyday
    hyperbole ('this exam is killing me 😂') stays quiet."""
    locked = safety_detector.assess("they locked me in the room again 😂")
    assert locked.figurative and "emergency" not in locked and "emergency" in locked.doubts
    assert locked.ask
    joke = safety_detector.assess("this exam is killing me 😂")
    assert not joke.worrying


@pytest.mark.parametrize("text", [
    "ahly 2afalo 3alaya w beydrabony",  # "ahly" is "my family", not the football club
    "عايزين ياخدوا الكلية بتاعتي وحابسني في الشقة",  # "الكلية" is also "the kidney"
])
def test_words_that_only_look_figurative_do_not_silence_danger(
    text: str, safety_detector: EmbeddedSafety,
) -> None:
    assert "emergency" in safety_detector.assess(text)


@pytest.mark.parametrize("text", [
    "el 7ar mawetna el naharda",          # the heat "killed" us (Arabizi keys rule)
    "el shoghl el gedid da 2atelny",      # the job is killing me
    "ce boulot me tue",                   # French: an inanimate subject
    "this job is killing me",
    "الشغل ده قاتلني",
])
def test_everyday_hyperbole_about_heat_or_work_stays_quiet(
    text: str, safety_detector: EmbeddedSafety,
) -> None:
    found = safety_detector.assess(text)
    assert found.figurative
    assert not found.labels & {"emergency", "self_harm", "grey"}, found
    assert not found.doubts, found


@pytest.mark.parametrize("text", [
    "hayemawetoni law mashet",            # they will kill me if I leave
    "il me tue, il me frappe tous les soirs",
    "el mo3alem fel madrasa beyedrabni kol youm",   # a school is not a figurative context
    "المعلم بيضربني في المدرسة كل يوم",
    "el boss beta3 el shoghl beyedrabni",  # work mentioned, but the danger is literal
])
def test_the_same_words_said_literally_still_act(
    text: str, safety_detector: EmbeddedSafety,
) -> None:
    assert "emergency" in safety_detector.assess(text)


DEV = Path(__file__).resolve().parents[2] / "nlu" / "safety_data" / "dev" / "round6_dev.jsonl"
DEV7 = DEV.with_name("round7_dev.jsonl")


def test_the_dev_sets_are_never_trained_on() -> None:
    trained = {p.resolve() for p in training_files()}
    assert DEV.resolve() not in trained and DEV7.resolve() not in trained


def test_recall_and_false_alarms_on_the_round6_dev_set(safety_detector: EmbeddedSafety) -> None:
    """Round 6 (nlu/safety_data/README.md): written with the training part by the same
    imagined authors, in eight varieties (Gulf included), never trained on."""
    report = evaluate(safety_detector, read_safety_jsonl(DEV))
    labels = report["labels"]
    assert labels["emergency"]["recall"] >= 0.97
    assert labels["self_harm"]["recall"] >= 0.95
    assert labels["minor"]["recall"] >= 0.95
    assert labels["child_at_risk"]["recall"] >= 0.95
    assert labels["grey"]["covered"] >= 0.85
    assert report["hard_negatives"]["false_alarm_rate"] <= 0.03
    assert report["ages"]["exact"] >= 0.95


def test_recall_and_false_alarms_on_the_round7_dev_set(safety_detector: EmbeddedSafety) -> None:
    """Round 7: MSA, English and Egyptian indirect danger, French self-harm and minors,
    children reported by others in every variety, hard negatives in the same registers."""
    report = evaluate(safety_detector, read_safety_jsonl(DEV7))
    labels = report["labels"]
    assert labels["emergency"]["recall"] >= 0.97
    assert labels["self_harm"]["recall"] >= 0.95
    assert labels["minor"]["recall"] >= 0.95
    assert labels["child_at_risk"]["recall"] >= 0.95
    # 3 of 26. Training on round 8 made it 2 of 26 but cost held-out emergency recall
    # (0.964 -> 0.951, French 0.938 -> 0.875): round 8 is a dev set instead.
    assert report["hard_negatives"]["false_alarm_rate"] <= 0.12
    assert report["ages"]["exact"] >= 0.95


@pytest.mark.parametrize("text", [
    "mon patron menace de tuer ma mère si je quitte le travail",
    "he threatened to hurt my sister if I leave",
    "le courtier a un couteau et dit que je dois signer",
    "howa 3ando mosadas, ana ta7t el sereer",
    "etkhatafna",
])
def test_threats_to_family_weapons_and_kidnapping_act(
    text: str, safety_detector: EmbeddedSafety,
) -> None:
    assert "emergency" in safety_detector.assess(text)


def test_a_doubt_about_a_child_with_the_childs_age_acts() -> None:
    """The model's doubt alone asks; with a child's age given it acts (16000, report)."""

    class Doubts:
        labels: tuple[str, ...] = ("child_at_risk",)

        def assess(self, normalized: str) -> tuple[frozenset[str], frozenset[str], dict]:
            return frozenset(), frozenset({"child_at_risk"}), {}

    detector = EmbeddedSafety(Doubts())  # type: ignore[arg-type]
    with_age = detector.assess("the boy at the bakery is 12 and sleeps there every night")
    assert "child_at_risk" in with_age.labels
    without = detector.assess("the boy at the bakery sleeps there every night")
    assert "child_at_risk" not in without.labels and "child_at_risk" in without.doubts


class _Acts:
    """A stand-in model that acts on the given labels whatever the text."""

    def __init__(self, *labels: str) -> None:
        self.labels = labels

    def assess(self, normalized: str) -> tuple[frozenset[str], frozenset[str], dict]:
        return frozenset(self.labels), frozenset(), {}


@pytest.mark.parametrize(("text", "minor"), [
    # someone else's age (digits or words): the model's "minor" is not the writer's
    ("ma fille a quinze ans, elle peut voyager avec sa tante ?", False),
    ("هل يمكن لابنتي ذات الخمسة عشر عاماً السفر مع خالتها؟", False),
    ("my son is twelve, what documents does he need for a passport?", False),
    ("ابني عنده اتناشر سنة وعايز اقدمله في مدرسة", False),
    # the writer's own age decides, in words too
    ("j'ai quinze ans et je veux partir", True),
    ("انا عندي اتناشر سنة وعايز اشتغل", True),
    ("I turn 16 next month and a man offered me a job", True),
    # no age at all: the model's guess stands
    ("je suis petite et je travaille chez une dame toute la journée", True),
])
def test_the_models_minor_is_dropped_when_the_age_is_someone_elses(text: str,
                                                                     minor: bool) -> None:
    detector = EmbeddedSafety(_Acts("minor"))  # type: ignore[arg-type]
    assert ("minor" in detector.assess(text)) is minor


def test_a_parent_describing_their_child_in_danger_is_still_a_child_at_risk() -> None:
    detector = EmbeddedSafety(_Acts("child_at_risk", "minor"))  # type: ignore[arg-type]
    found = detector.assess("ابني عنده ١٢ سنة والمعلم في الورشة بيضربه ومش بيرجعه البيت")
    assert "child_at_risk" in found and "minor" not in found and found.age is None


@pytest.mark.parametrize("text", [
    "j'en peu plus de cette vie, je pense a en finir ce soir",
    "g pensé a me tuer toute la nuit",
    "je me fais du mal avec une lame quand ça va trop mal",
    "je me coupe encore les bras, ça me calme un peu",
    "ma famille serait mieux sans moi",
    "si demain je suis plus là dites à ma soeur que je l'aime",
    "jveux plus me réveiller le matin",
    "je pense que la mort serait plus douce que ma vie ici",
])
def test_round8_french_self_harm_rules_fire(text: str) -> None:
    assert default_safety_net().fired(normalize(text)).get("self_harm")


@pytest.mark.parametrize("text", [
    "je pense à mourir de rire", "je me fais du souci pour mon frère",
    "l'équipe serait mieux sans moi ce soir", "si je suis plus là à 18h, appelle-moi",
    "il va me faire du mal si je pars",  # a threat, not self-harm
])
def test_round8_french_self_harm_rules_stay_quiet(text: str) -> None:
    assert "self_harm" not in default_safety_net().fired(normalize(text))


@pytest.mark.parametrize(("text", "confined"), [
    ("انا محبوس في البيت من المذاكرة، امتحاناتي الاسبوع الجاي", False),
    ("احنا محبوسين في العربية من الزحمة بقالنا ساعتين", False),
    ("انا محبوسة في البيت من الانفلونزا بقالي اسبوع", False),
    ("انا محبوسة في البيت من امبارح", True),
    ("احنا محبوسين في المخزن من اسبوع", True),
])
def test_stuck_because_of_studying_traffic_or_the_flu_is_no_confinement(
    text: str, confined: bool,
) -> None:
    assert (default_safety_net().fired(normalize(text)).get("emergency") == "ar-held") is confined


def test_levantine_this_exam_is_figurative_and_the_university_is_not() -> None:
    net = default_safety_net()
    assert net.figurative(normalize("هالامتحان رح يقتلني، بدي نام"))
    beaten = normalize("جوز خالتي ماسكني في البيت ومش بيخليني اروح الجامعة وبيضربني")
    assert not net.figurative(beaten) and net.fired(beaten).get("emergency")
    assert net.figurative(normalize("الجامعة هتموتني السنة دي"))  # hyperbole about it still is


DEV8 = DEV.with_name("round8_dev.jsonl")


def test_the_round8_dev_set_is_never_trained_on() -> None:
    assert DEV8.resolve() not in {p.resolve() for p in training_files()}


def test_recall_and_false_alarms_on_the_round8_dev_set(safety_detector: EmbeddedSafety) -> None:
    """Round 8: Egyptian, MSA and French indirect danger, French self-harm, minors by age in
    words and by a birthday to come, children reported by others, 32 hard negatives (parents
    giving a child's age with an everyday question, adults' ages, hyperbole, news)."""
    report = evaluate(safety_detector, read_safety_jsonl(DEV8))
    labels = report["labels"]
    assert labels["emergency"]["recall"] >= 0.94  # 17 of 18; covered 18 of 18
    assert labels["emergency"]["covered"] >= 0.99
    assert labels["self_harm"]["recall"] >= 0.99
    assert labels["minor"]["recall"] >= 0.99
    assert labels["child_at_risk"]["recall"] >= 0.99
    assert report["hard_negatives"]["false_alarm_rate"] <= 0.13  # 4 of 32 (a child's age)
    assert report["ages"]["exact"] >= 0.99


DEV8_AUTHORS = DEV.with_name("round8_authors.jsonl")


def test_round8_authors_is_a_dev_set(safety_detector: EmbeddedSafety) -> None:
    """Round 8's larger part (299 messages, 136 hard negatives) was written for training,
    but training on it lowered held-out emergency recall: it is measured, never trained on.
    Its hard negatives (parents giving a child's age, adults' ages, hyperbole) are where
    the detector still errs: one in five asks or alarms."""
    assert DEV8_AUTHORS.resolve() not in {p.resolve() for p in training_files()}
    report = evaluate(safety_detector, read_safety_jsonl(DEV8_AUTHORS))
    labels = report["labels"]
    assert labels["emergency"]["recall"] >= 0.93  # 60 of 64; covered 64 of 64
    assert labels["emergency"]["covered"] >= 0.99
    assert labels["self_harm"]["recall"] >= 0.99
    assert labels["minor"]["recall"] >= 0.99
    assert labels["child_at_risk"]["recall"] >= 0.97
    assert report["hard_negatives"]["false_alarm_rate"] <= 0.22  # 29 of 136
    assert report["ages"]["exact"] >= 0.99
