"""Ages in every variety: numbers, the writer's own current age, and "I'm a minor"."""

from __future__ import annotations

import pytest

from nlu.ages import AgeReader, age_answer, is_minor_statement, number_value, stated_age

NUMBERS = [
    # digits, Arabic-Indic and Persian digits
    ("16", 16), ("١٦", 16), ("۱۷", 17), ("9", 9), ("99", 99),
    # MSA
    ("خمسة عشر", 15), ("ستة عشر", 16), ("سبع عشرة", 17), ("أربعة عشر", 14), ("ثمانية عشر", 18),
    ("اثنا عشر", 12), ("عشرون", 20), ("واحد وعشرون", 21),
    # Egyptian, Levantine, Sudanese
    ("سطاشر", 16), ("ستاشر", 16), ("خمستاشر", 15), ("تلتاشر", 13), ("اربعتاشر", 14),
    ("سبعتاشر", 17), ("تمنتاشر", 18), ("حداشر", 11), ("اتناشر", 12), ("عشرين", 20),
    ("واحد وعشرين", 21), ("واحد و عشرين", 21), ("خمسة و عشرين", 25), ("ستعش", 16),
    ("خمستعش", 15), ("تلاتين", 30),
    # spelled as heard: ط for ت, a trailing ر ("ستطعش", "اربعطعشر")
    ("ستطعش", 16), ("ستطاشر", 16), ("اربعطعشر", 14), ("خمستعشر", 15), ("سبعطعشر", 17),
    # Arabizi
    ("sta4ar", 16), ("sitta4ar", 16), ("sta3shar", 16), ("khamasta4ar", 15),
    ("5amasta4ar", 15), ("arba3ta4ar", 14), ("saba3ta4ar", 17), ("tamanta4ar", 18),
    ("tala3ta4ar", 13), ("3ishreen", 20), ("wa7ed w 3ishreen", 21), ("Sta4ar", 16),
    # English
    ("fifteen", 15), ("sixteen", 16), ("Seventeen", 17), ("twenty-one", 21),
    ("twenty one", 21), ("thirty", 30), ("sixten", 16),
    # French
    ("quinze", 15), ("seize", 16), ("dix-sept", 17), ("dix sept", 17), ("dix-huit", 18),
    ("vingt-et-un", 21), ("vingt et un", 21), ("vingt-deux", 22), ("soixante-dix-sept", 77),
    ("quatre-vingt-dix-neuf", 99),
]
NOT_NUMBERS = ["16000", "0016", "100", "hello", "", "16 ans", "ستة عشر عاما", "sixteen people",
               "sit", "set", "16 000"]


@pytest.mark.parametrize(("text", "value"), NUMBERS)
def test_number_value(text: str, value: int) -> None:
    assert number_value(text) == value


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_not_a_number(text: str) -> None:
    assert number_value(text) is None


STATED = [
    # Arabic
    ("عندي ١٥ سنة", 15), ("عمري ستة عشر عاما", 16), ("انا عندي سطاشر سنة", 16),
    ("أنا عمري ١٧", 17), ("عمري 14 سنه", 14), ("انا ١٦ سنة", 16), ("سني ١٥", 15),
    ("انا عندي ١٦ سنة واخويا عنده ٢٠", 16), ("عندي ١٦سنة ومحتاج شغل", 16),
    ("عندي خمستاشر سنة", 15), ("عمري سبعتعش", 17),
    # Arabizi
    ("ana 3andi 16 sana", 16), ("ana 15 sana", 15), ("3omri sta4ar", 16),
    ("ana 3andi sta4ar sana", 16), ("ana 3andi 16", 16), ("3andi 17 sana w 3ayez asafer", 17),
    # English
    ("I'm 16", 16), ("i am sixteen years old", 16), ("16 years old", 16), ("16yo", 16),
    ("16 yo", 16), ("I'm 16 and a man offered me a job abroad", 16), ("im 15", 15),
    ("I am 17 yrs old", 17), ("i'm a 16 year old girl", 16), ("my age is 15", 15),
    ("my brother is 20 and I'm 16", 16), ("Im seventeen", 17),
    # French
    ("j'ai seize ans", 16), ("j ai 17ans", 17), ("J'ai 15 ans et je veux partir", 15),
    ("jai 16 ans", 16), ("j'ai dix-sept ans", 17), ("je suis âgée de 16 ans", 16),
    ("je viens d'avoir 15 ans", 15), ("moi 16ans", 16), ("moi j'ai 14 ans", 14),
    # round 4 of the safety data: "still 16", "y/o", spelled as heard
    ("ana lsa 16", 16), ("ana lessa 15", 15), ("16 y/o here, a man offered me work", 16),
    ("عمري ستطعش سنة", 16), ("انا عمري اربعطعشر", 14),
]
NOT_STATED = [
    # a past age
    "when I was 15 I worked", "when i was sixteen", "لما كان عندي ١٦ سنة", "لما كنت عندي ١٥ سنة",
    "quand j'avais 15 ans", "j'avais 16 ans", "I was 16 years old when I left",
    # someone else's
    "my son is 16", "my son is 16 years old", "اخويا عنده ١٥ سنة", "بنتي عمرها ١٤",
    "mon frère a 16 ans", "ma fille a seize ans", "ibni 3ando 15 sana",
    # durations and counts
    "I worked there 15 years", "بقالي ١٥ سنة", "بقالي ١٥ سنة في مصر", "15 people", "ده من ١٦ سنة",
    "I have been here for 16 years", "il y a 16 ans", "depuis 15 ans", "عندي 15 سنة خبرة",
    "I'm 15 minutes away", "ana sha8al hena men 15 sana",
    # prices and other numbers
    "it costs 16000", "عندي 16000 جنيه", "16000", "عندي ٣ عيال", "call 16000", "",
    "hello", "I want to travel",
]


@pytest.mark.parametrize(("text", "age"), STATED)
def test_stated_age(text: str, age: int) -> None:
    assert stated_age(text) == age


@pytest.mark.parametrize("text", NOT_STATED)
def test_not_a_stated_age(text: str) -> None:
    assert stated_age(text) is None


ANSWERS = [
    ("16", 16), ("١٦", 16), ("ستة عشر", 16), ("sixteen", 16), ("seize", 16), ("16 سنة", 16),
    ("sixteen years", 16), ("sta4ar", 16), ("dix-sept ans", 17), ("ana 16", 16),
    ("ستاشر سنة", 16), ("ستة عشر عاما", 16), ("twenty one", 21), ("25", 25), ("16 ans", 16),
    ("I'm 16", 16), ("عندي ١٥ سنة", 15), ("16 years old", 16), ("khamasta4ar sana", 15),
]
NOT_ANSWERS = ["hello", "16000", "16 people", "my son is 16", "why?", "", "ده من ١٦ سنة",
               "بقالي ١٥ سنة", "0", "150"]


@pytest.mark.parametrize(("text", "age"), ANSWERS)
def test_age_answer(text: str, age: int) -> None:
    assert age_answer(text) == age


@pytest.mark.parametrize("text", NOT_ANSWERS)
def test_not_an_age_answer(text: str) -> None:
    assert age_answer(text) is None


MINOR = [
    # English
    "I'm not 18 yet", "I'm still a minor", "i am a minor", "I am under 18", "not 18 yet",
    "I'm in 10th grade", "i'm in grade 9", "I'm in ninth grade", "im in middle school",
    # Arabic
    "لسه ما كملتش ١٨", "لسه مكملتش 18", "انا تحت ال18", "انا اقل من ١٨ سنة", "انا قاصر", "قاصر",
    "أنا في تانية إعدادي", "اولى ثانوي", "انا في الصف التاسع", "تالته اعدادي",
    # Arabizi
    "ana lessa ta7t el 18", "ana ta7t el18", "ana 2aser", "ana fi tanya e3dady",
    "ana lessa mkamaltesh tamanta4ar",
    # French
    "je suis mineur", "je suis mineure", "j'ai pas 18 ans", "je suis en seconde",
    "je suis en 3ème", "je suis en troisième", "je suis au collège", "en 4e",
    "not even 18 yet", "I'm not even 18",
]
NOT_MINOR = [
    "my son is a minor", "اخويا لسه تحت ال١٨", "when I was under 18", "I'm 25", "hello",
    "قاصر عن الفهم", "I'm in 12th grade", "je suis en retard", "mon fils est mineur",
    "ابني في تانية إعدادي", "attendez une seconde", "",
]


@pytest.mark.parametrize("text", MINOR)
def test_minor_statement(text: str) -> None:
    assert is_minor_statement(text) is True


@pytest.mark.parametrize("text", NOT_MINOR)
def test_not_a_minor_statement(text: str) -> None:
    assert is_minor_statement(text) is False


def test_patterns_must_be_written_normalised() -> None:
    data = {
        "numbers": {"units": {}, "teens": {}, "tens": {}, "arabizi": {}, "teen_suffix": [],
                    "joiners": [], "attached_joiner": "و", "tens_with_teens": [],
                    "digit_prefixes": [], "digit_suffixes": ["yo"]},
        "years": "(?:years)", "answer_words": [], "minor": ["قاصرة"], "grades": [],
        "stated": {"first_person": [], "bare": [], "past_before": [], "blocked_before": [],
                   "blocked_after": []},
    }
    with pytest.raises(ValueError, match="not normalised"):
        AgeReader.from_mapping(data)


@pytest.mark.parametrize(("text", "age"), [
    ("3andi 15 w el ragel da 3ayez yesafferni", 15),
    ("ana 17 w el kafeel mesh bydeeni floos", 17),
    ("omry 14", 14),
    ("ana bent 16 sana", 16),
    ("ana 5amasta3sh", 15),
    ("أنا فتاة في الخامسة عشرة من عمري", 15),
    ("أبلغ من العمر سبعة عشر عامًا", 17),
    ("انا في السادسة عشرة", 16),
])
def test_more_ways_to_say_ones_own_age(text: str, age: int) -> None:
    assert stated_age(text) == age


@pytest.mark.parametrize("text", [
    "how do I protect my 13 year old son online?",
    "an 11 year old kid works at the shop next door",
    "our 12 year old wants to join a club",
    "ana 3andi 3 wlad",
])
def test_other_peoples_ages_and_counts_are_not_the_writers(text: str) -> None:
    assert stated_age(text) is None


@pytest.mark.parametrize(("text", "age"), [
    ("je suis une fille de 16 ans", 16),
    ("je suis un garçon de 15 ans et on me propose un travail en Libye", 15),
    ("je suis une femme de 30 ans", 30),
])
def test_french_i_am_a_girl_of_sixteen(text: str, age: int) -> None:
    assert stated_age(text) == age


@pytest.mark.parametrize("text", [
    "لم أبلغ الثامنة عشرة بعد وعايز أسافر", "I am not 18 yet", "لم ابلغ 18 بعد"])
def test_not_yet_eighteen_is_a_minor_never_an_age_of_eighteen(text: str) -> None:
    assert stated_age(text) is None and is_minor_statement(text)


@pytest.mark.parametrize("text", [
    "ana ma3andish 18 bs 3ayez a3raf el 7o2o2 bta3ty",
    "انا ما عندي ١٨ لسه، والزول الشغال معاهو بقول لي",
    "ana msh kamelt 18 lessa, ينفع اسافر؟",
    "ana under 18 ynf3 at2adem?",
    "ana taht el sen",
    "أنا بنت بصف تاسع، أهلي عم يحكوا عن عريس من برا",
    "هسي انا في تالتة متوسط وعايشين في القاهرة",
    "ana lesa fel madrasa, im in 9th grade, but i want to work in dubai",
    "ahly msh 3arfeen eny bakalemko, ana f ola sanawy w fe bent 3al insta",
])
def test_minors_said_in_passing(text: str) -> None:
    assert is_minor_statement(text) or (stated_age(text) or 99) < 18


@pytest.mark.parametrize(("text", "age"), [
    ("ana 3ndi 16 🙄 w mama mesh mwaf2a asafer", 16),
    ("i am a girl of 17 years, a woman say she will send me to Lebanon", 17),
    ("لا يسمحون لي بالنوم، وإذا توقفت يضربونني، وأنا في السادسة عشرة", 16),
])
def test_ages_with_an_emoji_a_girl_of_or_a_leading_and(text: str, age: int) -> None:
    assert stated_age(text) == age


@pytest.mark.parametrize("text", [
    "I'm a 3rd year university student looking for summer internships abroad",
    "عندي 3 عيال وعايز شغل في الخليج",
])
def test_adults_stay_adults(text: str) -> None:
    assert not is_minor_statement(text) and (stated_age(text) or 99) >= 18


@pytest.mark.parametrize(("text", "age"), [
    ("انا عندي ١٧ والمكتب اخد الباسبور بتاعي", 17),        # "and" written on the next word
    ("والله انا لسه صغير 15 سنه بس لازم اشتغل", 15),
    ("لسه ١٦ سنة بس عندي خبرة في الكهربا", 16),
    ("ana 3ndy arba3tashar sna w 3yz asafr", 14),            # "sna"
    ("I turned 16 last month and my uncle wants me to work abroad", 16),
    ("j'ai à peine 16 ans et on me propose un travail", 16),
    ("je viens de fêter mes 15 ans", 15),
    ("je suis mineur, 16 ans, arrivé du Soudan", 16),
])
def test_an_age_said_with_a_word_around_it(text: str, age: int) -> None:
    assert stated_age(text) == age


@pytest.mark.parametrize("text", [
    "عندي ٣ ولاد وعايز اشتغل برا", "when I turned 16 I left school, now I'm a lawyer",
])
def test_counts_and_past_turning_points_are_no_age(text: str) -> None:
    assert stated_age(text) is None


@pytest.mark.parametrize("text", [
    "I'll be 17 in March, can I travel alone for a job?", "عمري ما وصل ١٨ وعايز اسافر",
    "bonjour, je suis au lycée et un homme veut m'emmener en Libye", "salut je suis collégienne",
    "hi, I'm in high school and a man offered me work", "I'm a 10th grader",
    "I'm underage and a man offered me a job abroad", "im too young to have a passport",
    "je suis trop jeune pour avoir un passeport", "je n'ai pas encore 18 ans",
    "انا لسه طفل وعايز اشتغل", "ana lessa so3'ayar w 3ayez ashtghal",
])
def test_more_ways_to_say_im_under_18(text: str) -> None:
    assert is_minor_statement(text)


@pytest.mark.parametrize("text", [
    "je suis encore un enfant", "je ne suis qu'une gamine", "je suis qu'un ado",
    "mineur isolé, je dors dans la rue", "je suis élève de 2nde", "je vais au collège",
    "je viens d'entrer au lycée", "je passe le brevet cette année",
])
def test_french_minors_in_round7_forms(text: str) -> None:
    """'un'/'une' is read as the number 1, so 'un enfant' must be matched as '#1 enfant'."""
    assert is_minor_statement(text)


@pytest.mark.parametrize("text", [
    "mon frère est un mineur isolé, comment l'aider ?", "mon fils est au collège",
    "ma fille passe le brevet cette année", "I'm at school right now, can I call later?",
])
def test_someone_elses_school_or_status_is_no_minor(text: str) -> None:
    assert not is_minor_statement(text)


@pytest.mark.parametrize("text", [
    "وانا صغير اشتغلت في ورشة، دلوقتي عندي ٣٠", "w ana so3'ayar kont bashtaghal fel ghet",
    "I'm a high school teacher", "je suis prof au lycée", "I was in high school when I left",
    "I'll be 25 next year",
])
def test_an_adult_remembering_childhood_is_no_minor(text: str) -> None:
    assert not is_minor_statement(text)


@pytest.mark.parametrize(("text", "child"), [
    ("my sister is 14 and my father wants to marry her", True),
    ("بنت اختي عندها ١٣ سنة", True),
    ("ebn 3ammi 3ando 15 sana", True),
    ("un garçon de 10 ans mendie pour un groupe", True),
    ("طفل في الثانية عشرة ينام في المخبز", True),
    ("my son is 25", False),
    ("I'm 15", False),
    ("انا عندي ١٥ سنة", False),
])
def test_someone_elses_age_under_18(text: str, child: bool) -> None:
    assert AgeReader.load().mentions_child(text) is child


@pytest.mark.parametrize(("text", "age"), [
    ("i'm a girl, 15, my dad wants me to marry", 15), ("me 16, want to work in dubai", 16),
])
def test_an_age_after_a_comma(text: str, age: int) -> None:
    assert stated_age(text) == age


def test_turning_an_age_soon_is_the_age_below() -> None:
    assert is_minor_statement("je fête mes 17 ans demain")
    assert not is_minor_statement("je fête mes 30 ans demain")
    assert stated_age("me 2 weeks ago") is None


# Round 8 (issue #18): whose age is it? The writer's own age makes a minor; a child's age given
# by a parent or relative ("my son is 12") never does, and is read as someone else's.
AGE_OWNER = [
    # (text, the writer's age, ages given to someone else)
    ("I'm 12", 12, []),
    ("عندي ١٢ سنة", 12, []),
    ("ana 3andi 12 sana", 12, []),
    ("j'ai douze ans", 12, []),
    ("my son is 12", None, [12]),
    ("ابني عنده ١٢ سنة", None, [12]),
    ("ibni 3ando 12 sana", None, [12]),
    ("ma fille a quinze ans, elle peut voyager avec sa tante ?", None, [15]),
    ("هل يمكن لابنتي ذات الخمسة عشر عاماً السفر مع خالتها؟", None, [15]),
    ("بنتي عمرها ١٤ وانا عندي ٣٥ سنة", 35, [14]),
]


@pytest.mark.parametrize(("text", "writer", "others"), AGE_OWNER)
def test_whose_age_it_is(text: str, writer: int | None, others: list[int]) -> None:
    reader = AgeReader.load()
    assert reader.stated_age(text) == writer
    assert reader.others_ages(text) == others


@pytest.mark.parametrize(("text", "value"), [("الخمسة عشر", 15), ("الاربعة عشر", 14),
                                             ("الثمانية عشر", 18)])
def test_cardinal_teens_with_the_article(text: str, value: int) -> None:
    """'ابنتي ذات الخمسة عشر عاماً': the article on a cardinal, not only on an ordinal."""
    assert number_value(text) == value


FUTURE_BIRTHDAYS = [
    # a birthday to come: the writer is one year younger now
    ("I turn 16 next month and a man offered me work", 15),
    ("I'm turning sixteen in may", 15),
    ("my 16th birthday is next week", 15),
    ("I'm almost 16", 15),
    ("هكمل ١٧ في رمضان وعايز اسافر", 16),
    ("هبقى ١٦ الشهر الجاي", 15),
    ("داخل على ١٧ وأهلي عايزين يسفروني", 16),
    ("سأبلغ السابعة عشرة الشهر القادم", 16),
    ("رح صير عمري ١٧ بعد شهرين", 16),
    ("ana hakammel 17 el shahr el gai", 16),
    ("ana hab2a 16 ba3d el 3eid", 15),
    ("j'aurai 16 ans en mars", 15),
    ("je vais avoir quinze ans le mois prochain", 14),
    ("I'll be 25 next year", 24),
]


@pytest.mark.parametrize(("text", "age"), FUTURE_BIRTHDAYS)
def test_a_birthday_to_come_is_the_age_below(text: str, age: int) -> None:
    assert stated_age(text) == age


@pytest.mark.parametrize("text", [
    "when I turn 18 I will travel", "لما اكمل ١٨ هسافر", "quand j'aurai 18 ans je partirai",
    "هكمل ١٥ سنة في الشغل ده الشهر الجاي", "انا هكمل ١٠ سنين في مصر السنة دي",
    "I'll be 20 years in this country next month", "my son turns 16 next month",
    "ابني هيكمل ١٦ الشهر الجاي", "ma nièce aura 16 ans en mars", "I'll be there in 5 minutes",
    "هبقى اكلمك بكره",
])
def test_conditions_durations_and_others_birthdays_are_no_age(text: str) -> None:
    assert stated_age(text) is None
