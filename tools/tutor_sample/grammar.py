"""Learner-error patterns for the bundled tutor set (written for this project; no external data).

Each family builds one sentence with one error from its word lists: a :class:`Sentence` is a
template whose ``{}`` slots hold a :class:`Fix` (the learner's words, the correction, why, and how
much the error costs the score). The same template gives the wrong and the corrected sentence.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


# Word lists and tables are laid out by hand (one entry per line), not by the formatter.
# fmt: off

@dataclass(frozen=True)
class Fix:
    wrong: str
    right: str
    explanation: str
    weight: int  # score points the error costs


@dataclass(frozen=True)
class Sentence:
    template: str
    fixes: tuple[Fix, ...]

    def wrong(self) -> str:
        return self.template.format(*(f.wrong for f in self.fixes))

    def right(self) -> str:
        return self.template.format(*(f.right for f in self.fixes))


def _one(template: str, wrong: str, right: str, explanation: str, weight: int) -> Sentence:
    return Sentence(template, (Fix(wrong, right, explanation, weight),))


SINGULAR = ("She", "He", "My sister", "My brother", "Our teacher", "The manager", "My neighbour", "Tom",
            "Maria", "My father")
PLURAL = ("I", "We", "They", "My parents", "You", "Our neighbours", "My classmates")
HABITS = (  # base, third person, object
    ("play", "plays", "tennis"), ("watch", "watches", "the news"), ("drink", "drinks", "green tea"),
    ("go", "goes", "to the gym"), ("study", "studies", "French"), ("wash", "washes", "the dishes"),
    ("fix", "fixes", "old bicycles"), ("have", "has", "lunch with colleagues"),
    ("read", "reads", "the newspaper"),
    ("cook", "cooks", "dinner"), ("walk", "walks", "the dog"), ("teach", "teaches", "maths"),
    ("catch", "catches", "the bus to work"), ("do", "does", "yoga"), ("carry", "carries", "a heavy bag"),
)
OFTEN = ("every day", "every morning", "on Sundays", "after work", "twice a week", "at the weekend",
         "in the evening")


def agreement(rng: random.Random) -> Sentence:
    base, third, obj = rng.choice(HABITS)
    when = rng.choice(OFTEN)
    if rng.random() < 0.7:
        subject = rng.choice(SINGULAR)
        why = f"With a singular subject like '{subject}', the present simple verb takes -s: '{third}'."
        return _one(f"{subject} {{}} {obj} {when}.", base, third, why, 15)
    subject = rng.choice(PLURAL)
    why = f"With '{subject}', the present simple verb has no -s: '{base}', not '{third}'."
    return _one(f"{subject} {{}} {obj} {when}.", third, base, why, 15)


PAST = (  # base, past, wrong regular form (None: regular verb), object
    ("go", "went", "goed", "to the cinema"), ("buy", "bought", "buyed", "a new jacket"),
    ("eat", "ate", "eated", "sushi"),
    ("see", "saw", "seed", "an old friend"), ("write", "wrote", "writed", "a long email"),
    ("take", "took", "taked", "a taxi home"), ("meet", "met", "meeted", "my cousin"),
    ("lose", "lost", "losed", "my keys"),
    ("make", "made", "maked", "a chocolate cake"), ("find", "found", "finded", "a wallet in the street"),
    ("visit", "visited", None, "the science museum"), ("watch", "watched", None, "a documentary"),
    ("play", "played", None, "football in the park"), ("forget", "forgot", "forgetted", "my umbrella"),
    ("leave", "left", "leaved", "work early"), ("swim", "swam", "swimmed", "in the lake"),
    ("drink", "drank", "drinked", "too much coffee"), ("catch", "caught", "catched", "a cold"),
)
PAST_TIMES = ("Yesterday", "Last weekend", "Two days ago", "Last summer", "On Monday", "Last night",
              "Last year")
PAST_SUBJECTS = ("I", "We", "My friends", "She", "He", "My family", "They")


def past_tense(rng: random.Random) -> Sentence:
    base, past, regularised, obj = rng.choice(PAST)
    when, subject = rng.choice(PAST_TIMES), rng.choice(PAST_SUBJECTS)
    template = f"{when} {subject if subject == 'I' else subject.lower()} {{}} {obj}."
    if regularised and rng.random() < 0.4:
        why = f"'{base}' is irregular: its past simple is '{past}', not '{regularised}'."
        return _one(template, regularised, past, why, 12)
    if rng.random() < 0.3:
        why = f"After 'didn't', use the base form of the verb: 'didn't {base}'."
        at_end = when[0].lower() + when[1:]
        return _one(f"{subject} {{}} {obj} {at_end}.", f"didn't {past}", f"didn't {base}", why, 12)
    why = f"'{when}' is finished time, so use the past simple: '{past}', not '{base}'."
    return _one(template, base, past, why, 15)


DISLIKES = ("spicy food", "horror films", "getting up early", "loud music", "cold weather", "crowded buses",
            "long queues")


def negation(rng: random.Random) -> Sentence:
    subject, thing = rng.choice(SINGULAR), rng.choice(DISLIKES)
    if rng.random() < 0.5:
        why = f"With '{subject}', the present negative is 'doesn't', not 'don't'."
        return _one(f"{subject} {{}} {thing}.", "don't like", "doesn't like", why, 12)
    why = "Present simple negatives need 'do/does' + not + the base verb: 'doesn't like'."
    return _one(f"{subject} {{}} {thing}.", "not like", "doesn't like", why, 15)


QUESTIONS = (  # wh-word, subject, third-person verb phrase, base verb phrase
    ("Where", "she", "works", "work"), ("Why", "he", "wants to leave", "want to leave"),
    ("What", "your brother", "does for a living", "do for a living"),
    ("How much", "this jacket", "costs", "cost"), ("What time", "the film", "starts", "start"),
    ("How often", "your sister", "goes swimming", "go swimming"), ("Where", "you", "live", "live"),
    ("What kind of music", "you", "like", "like"), ("Which bus", "I", "need", "need"),
)


def question(rng: random.Random) -> Sentence:
    wh, subject, finite, base = rng.choice(QUESTIONS)
    aux = "do" if subject in ("you", "I", "they", "we") else "does"
    why = f"Present simple questions need '{aux}' before the subject: '{wh} {aux} {subject} {base}?'"
    return _one(f"{wh} {{}}?", f"{subject} {finite}", f"{aux} {subject} {base}", why, 15)


JOB_SUBJECTS = ("She", "He", "My mother", "My best friend", "Tom", "Maria", "My neighbour", "Her husband",
                "My cousin")
JOBS = ("teacher", "engineer", "nurse", "architect", "doctor", "student", "accountant", "artist", "pilot",
        "lawyer", "electrician", "university student", "English teacher")
A_AN = (  # template, wrong article + noun, right, why
    ("I waited for {} at the station.", "a hour", "an hour",
     "The 'h' in 'hour' is silent, so it starts with a vowel sound: 'an hour'."),
    ("She bought {} because it was raining.", "a umbrella", "an umbrella",
     "Use 'an' before a vowel sound: 'an umbrella'."),
    ("We saw {} at the zoo.", "a elephant", "an elephant", "Use 'an' before a vowel sound: 'an elephant'."),
    ("It was {} meeting.", "an useful", "a useful",
     "'Useful' starts with a 'you' sound (a consonant sound), so use 'a'."),
    ("They want to visit {} city.", "an European", "a European",
     "'European' starts with a 'you' sound, so use 'a'."),
    ("I ate {} after lunch.", "a apple", "an apple", "Use 'an' before a vowel sound: 'an apple'."),
    ("That was {} test.", "a easy", "an easy", "Use 'an' before a vowel sound: 'an easy test'."),
    ("He is {} man.", "a honest", "an honest", "The 'h' in 'honest' is silent, so use 'an'."),
    ("She wears {} at work.", "an uniform", "a uniform", "'Uniform' starts with a 'you' sound, so use 'a'."),
)
GENERAL = (("{} is more important than money.", "love"), ("I think {} should be free.", "education"),
           ("{} is getting more expensive every year.", "life"), ("We should protect {}.", "nature"),
           ("{} say that my city is beautiful.", "people"), ("She is afraid of {}.", "dogs"))


def articles(rng: random.Random) -> Sentence:
    roll = rng.random()
    if roll < 0.45:
        subject, job = rng.choice(JOB_SUBJECTS), rng.choice(JOBS)
        article = "an" if job[0] in "aeiou" and not job.startswith("uni") else "a"
        why = f"Use an article before a singular job or role noun: '{article} {job}'."
        return _one(f"{subject} is {{}}.", job, f"{article} {job}", why, 10)
    if roll < 0.8:
        template, wrong, right, why = rng.choice(A_AN)
        return _one(template, wrong, right, why, 8)
    template, noun = rng.choice(GENERAL)
    start = template.startswith("{}")
    wrong, right = (f"The {noun}", noun.capitalize()) if start else (f"the {noun}", noun)
    why = f"Don't use 'the' with a noun used in a general sense: '{noun}'."
    return _one(template, wrong, right, why, 8)


COUNT_NOUNS = (  # template, number, singular, plural
    ("She has {}.", "three", "child", "children"), ("We carried {} to the car.", "two", "box", "boxes"),
    ("I ate {} yesterday.", "two", "apple", "apples"),
    ("I have visited {} in Spain.", "several", "city", "cities"),
    ("We need {} for the picnic.", "two", "knife", "knives"),
    ("There were {} in the room.", "four", "person", "people"),
    ("We waited for {}.", "ten", "minute", "minutes"),
    ("We need {} for the salad.", "five", "tomato", "tomatoes"),
    ("I have {} in this class.", "many", "friend", "friends"),
    ("I called you {} yesterday.", "three", "time", "times"),
)
UNCOUNTABLE = (
    ("Can you give me {} about the course?", "some informations", "some information", "information"),
    ("My teacher gave me {}.", "many advices", "a lot of advice", "advice"),
    ("We bought {} for the flat.", "new furnitures", "new furniture", "furniture"),
    ("I have {} tonight.", "too many homeworks", "too much homework", "homework"),
    ("Our bags were heavy because we had {}.", "a lot of luggages", "a lot of luggage", "luggage"),
    ("The lab has {}.", "modern equipments", "modern equipment", "equipment"),
)
MUCH_MANY = (("There were {} at the concert.", "much people", "many people",
             "'People' is countable, so use 'many'."),
             ("I don't have {} this month.", "many money", "much money",
              "'Money' is uncountable, so use 'much'."),
             ("We didn't have {} to finish.", "many time", "much time",
              "'Time' (as duration) is uncountable: 'much time'."),
             ("She has {} in London.", "much friends", "many friends",
              "'Friends' is countable, so use 'many'."))


def countables(rng: random.Random) -> Sentence:
    roll = rng.random()
    if roll < 0.4:
        template, number, single, plural = rng.choice(COUNT_NOUNS)
        why = f"After '{number}', use the plural noun: '{plural}'."
        return _one(template, f"{number} {single}", f"{number} {plural}", why, 10)
    if roll < 0.75:
        template, wrong, right, noun = rng.choice(UNCOUNTABLE)
        why = f"'{noun.capitalize()}' is uncountable in English: no plural and no 'many' ('{right}')."
        return _one(template, wrong, right, why, 10)
    template, wrong, right, why = rng.choice(MUCH_MANY)
    return _one(template, wrong, right, why, 10)


COMPARATIVES = (  # right, wrong, why, (first, second) pairs it makes sense for
    ("bigger", "more bigger", "Don't use 'more' together with -er: 'bigger'.",
     (("My new flat", "my old one"), ("London", "Paris"), ("Our garden", "theirs"))),
    ("better", "more better", "'Good' is irregular: the comparative is 'better', without 'more'.",
     (("This book", "the film"), ("Her plan", "mine"), ("The second hotel", "the first one"))),
    ("worse", "badder", "'Bad' is irregular: the comparative is 'worse'.",
     (("This film", "the first one"), ("The traffic today", "yesterday"), ("My cold", "last week"))),
    ("easier", "more easy", "Short adjectives ending in -y take -ier: 'easier'.",
     (("The second test", "the first one"), ("This exercise", "the last one"))),
    ("cheaper", "more cheap", "'Cheap' is a short adjective: add -er ('cheaper') instead of 'more'.",
     (("The train", "the bus"), ("This jacket", "that one"), ("The second hotel", "the first one"))),
    ("more interesting", "interestinger", "Long adjectives use 'more': 'more interesting'.",
     (("This book", "the film"), ("History", "maths"), ("Her plan", "mine"))),
    ("more expensive", "expensiver", "Long adjectives use 'more': 'more expensive'.",
     (("My new flat", "my old one"), ("This jacket", "that one"), ("The train", "the bus"))),
    ("happier", "more happier", "Don't use 'more' together with -ier: 'happier'.",
     (("My sister", "she was last year"), ("Our dog", "our cat"))),
    ("farther", "farer", "'Far' is irregular: 'farther' (or 'further').",
     (("The airport", "the train station"), ("My office", "my school"))),
    ("more comfortable", "comfortabler", "Long adjectives use 'more': 'more comfortable'.",
     (("My new flat", "my old one"), ("The train", "the bus"), ("This chair", "that one"))),
)


def comparatives(rng: random.Random) -> Sentence:
    right, wrong, why, pairs = rng.choice(COMPARATIVES)
    first, second = rng.choice(pairs)
    if rng.random() < 0.2:
        why = "Use 'than' (not 'then') in comparisons."
        return _one(f"{first} is {right} {{}} {second}.", "then", "than", why, 8)
    return _one(f"{first} is {{}} than {second}.", wrong, right, why, 10)


DURATIONS = (  # subject, wrong verb, right verb, rest, (since point, for period)
    ("I", "live", "have lived", "in this city", ("2015", "eight years")),
    ("She", "works", "has worked", "at the bank", ("March", "three years")),
    ("We", "know", "have known", "each other", ("we were children", "a long time")),
    ("He", "is", "has been", "ill", ("Tuesday", "four days")),
    ("They", "are", "have been", "married", ("2010", "fifteen years")),
    ("I", "am learning", "have been learning", "English", ("last September", "two years")),
)


def perfect(rng: random.Random) -> Sentence:
    subject, wrong_verb, right_verb, rest, (point, period) = rng.choice(DURATIONS)
    roll = rng.random()
    if roll < 0.5:
        use, span = ("since", point) if rng.random() < 0.5 else ("for", period)
        why = f"It started in the past and continues now, so use the present perfect: '{right_verb}'."
        return _one(f"{subject} {{}} {rest} {use} {span}.", wrong_verb, right_verb, why, 15)
    if roll < 0.75:
        why = f"Use 'since' with a starting point ('{point}') and 'for' with a length of time."
        return _one(f"{subject} {right_verb} {rest} {{}}.", f"for {point}", f"since {point}", why, 12)
    why = f"Use 'for' with a length of time ('{period}') and 'since' with a starting point."
    return _one(f"{subject} {right_verb} {rest} {{}}.", f"since {period}", f"for {period}", why, 12)


ACTIVITIES = (("swim", "swimming"), ("cook", "cooking"), ("read", "reading"), ("travel", "travelling"),
              ("play the guitar", "playing the guitar"), ("learn languages", "learning languages"),
              ("walk in the park", "walking in the park"), ("paint", "painting"), ("dance", "dancing"))
ING_VERBS = ("enjoy", "finished", "avoid", "don't mind", "practise", "keep", "suggested")
TO_VERBS = ("want", "decided", "hope", "plan", "need", "promised", "would like")
MODALS = ("can", "must", "should", "might")


def verb_patterns(rng: random.Random) -> Sentence:
    subject = rng.choice(("I", "We", "They", "My friends and I"))
    base, ing = rng.choice(ACTIVITIES)
    roll = rng.random()
    if roll < 0.4:
        verb = rng.choice(ING_VERBS)
        why = f"'{verb}' is followed by the -ing form: '{verb} {ing}'."
        return _one(f"{subject} {{}}.", f"{verb} to {base}", f"{verb} {ing}", why, 12)
    if roll < 0.75:
        verb = rng.choice(TO_VERBS)
        why = f"'{verb}' is followed by 'to' + the base verb: '{verb} to {base}'."
        return _one(f"{subject} {{}}.", f"{verb} {ing}", f"{verb} to {base}", why, 12)
    if roll < 0.9:
        modal = rng.choice(MODALS)
        why = f"After a modal verb like '{modal}', use the base verb without 'to': '{modal} {base}'."
        return _one(f"{subject} {{}} every week.", f"{modal} to {base}", f"{modal} {base}", why, 12)
    why = "After 'look forward to', use the -ing form: 'to meeting'."
    return _one("I'm {} you next week.", "looking forward to meet", "looking forward to meeting", why, 12)


# --- fixed phrases: (template, learner's words, correction, why) ---------------------------------

PREPOSITIONS = (
    ("She is very good {} maths.", "in", "at", "We say 'good at' a subject or an activity."),
    ("I'm interested {} photography.", "about", "in", "We say 'interested in' something."),
    ("It depends {} the weather.", "of", "on", "We say 'depend on', not 'depend of'."),
    ("He is married {} a doctor.", "with", "to", "We say 'married to' someone."),
    ("We arrived {} London at midnight.", "to", "in",
     "Use 'arrive in' for cities and countries, 'arrive at' for places like stations."),
    ("I like {} music in the car.", "listening", "listening to", "'Listen' needs 'to' before its object."),
    ("See you {} Monday!", "in", "on", "Use 'on' with days of the week."),
    ("My birthday is {} July.", "on", "in", "Use 'in' with months."),
    ("The meeting starts {} nine o'clock.", "in", "at", "Use 'at' with clock times."),
    ("She is afraid {} spiders.", "from", "of", "We say 'afraid of' something."),
    ("I'm {} the bus.", "waiting", "waiting for", "We say 'wait for' someone or something."),
    ("We {} the plan for an hour.", "discussed about", "discussed",
     "'Discuss' takes a direct object, without 'about'."),
    ("I'm responsible {} the budget.", "of", "for", "We say 'responsible for' something."),
    ("Congratulations {} your new job!", "for", "on", "We say 'congratulations on' something."),
    ("She is proud {} her son.", "for", "of", "We say 'proud of' someone."),
    ("I {} early because I was tired.", "went to home", "went home",
     "No 'to' before 'home' after verbs of movement."),
    ("Can you {}?", "explain me the rule", "explain the rule to me",
     "'Explain' takes 'to' before the person: explain something to someone."),
)
WORD_CHOICE = (
    ("I {} in the test.", "did a mistake", "made a mistake",
     "We say 'make a mistake', not 'do a mistake'.", 10),
    ("Can you {} of us?", "make a photo", "take a photo", "We say 'take a photo'.", 10),
    ("I have to {} before dinner.", "make my homework", "do my homework", "We say 'do homework'.", 10),
    ("I {} with you.", "am agree", "agree", "'Agree' is a verb: say 'I agree', not 'I am agree'.", 12),
    ("I {}.", "have 25 years", "am 25 years old", "English uses 'be' for age: 'I am 25 years old'.", 12),
    ("She {} the truth.", "said me", "told me", "'Tell' takes the person as its object; 'say' does not.", 10),
    ("Can you {} your pen?", "borrow me", "lend me",
     "'Lend' is giving for a short time; 'borrow' is taking.", 10),
    ("The film was very {}.", "bored", "boring",
     "'-ing' adjectives describe what causes a feeling; '-ed' adjectives describe how people feel.", 10),
    ("I was very {} in the long meeting.", "boring", "bored",
     "'-ed' adjectives describe how people feel: 'bored'.", 10),
    ("My father {} how to drive.", "learned me", "taught me",
     "'Teach' is what the teacher does; 'learn' is what the student does.", 10),
    ("{} many problems in my city.", "There is", "There are",
     "'Problems' is plural, so use 'there are'.", 10),
    ("{} a lot of traffic in my city.", "It has", "There is",
     "Use 'there is/are' to say that something exists.", 12),
    ("Everybody {} happy with the results.", "are", "is", "'Everybody' is singular: 'everybody is'.", 10),
    ("{} went to the beach.", "Me and my friend", "My friend and I",
     "Use 'I' in the subject and put yourself last: 'my friend and I'.", 8),
    ("{} again, so take an umbrella.", "Is raining", "It is raining",
     "An English sentence needs a subject: 'It is raining'.", 12),
    ("He {} very well.", "can sings", "can sing", "After 'can', use the base verb: 'can sing'.", 12),
)
WORD_ORDER = (
    ("I {}.", "like very much football", "like football very much", "Put 'very much' after the object."),
    ("She {} late for class.", "always is", "is always", "Frequency adverbs go after 'be': 'is always'."),
    ("I {} to school by bus.", "go always", "always go",
     "Frequency adverbs go before the main verb: 'always go'."),
    ("Do you know where {}?", "is the station", "the station is",
     "In indirect questions, use statement word order."),
    ("Can you tell me what time {}?", "is it", "it is",
     "In indirect questions, use statement word order: 'what time it is'."),
    ("I {} to Japan.", "have been never", "have never been",
     "'Never' goes between 'have' and the past participle."),
    ("We bought a {} last month.", "car new", "new car", "Adjectives go before the noun."),
    ("He speaks {}.", "very well English", "English very well",
     "Don't put an adverb between the verb and its object."),
)
SPELLING = (
    ("I will {} the results tomorrow.", "recieve", "receive", "'i' before 'e' except after 'c': 'receive'."),
    ("She is {} coming to the party.", "definately", "definitely",
     "It is spelled 'definitely' (from 'finite')."),
    ("Please keep the two groups {}.", "seperate", "separate",
     "It is spelled 'separate', with 'par' in the middle."),
    ("I'll wait {} six o'clock.", "untill", "until", "'Until' has only one 'l'."),
    ("See you {}!", "tommorow", "tomorrow", "'Tomorrow' has one 'm' and two 'r's."),
    ("{} bus goes to the city centre?", "Wich", "Which", "'Which' is spelled with 'wh' and 'ch'."),
    ("What a {} garden!", "beautifull", "beautiful", "The suffix '-ful' has only one 'l'."),
    ("My best {} lives in Rome.", "freind", "friend", "It is spelled 'friend': 'i' before 'e'."),
    ("The {} announced new rules.", "goverment", "government", "Don't forget the 'n': 'government'."),
    ("I can't {} it!", "beleive", "believe", "'i' before 'e': 'believe'."),
    ("The accident {} at night.", "occured", "occurred", "'Occur' doubles the 'r' before '-ed': 'occurred'."),
    ("We must protect the {}.", "enviroment", "environment", "Don't forget the 'n': 'environment'."),
    ("Is it {} to bring an ID card?", "neccessary", "necessary", "One 'c' and two 's's: 'necessary'."),
    ("I am {} a letter to my aunt.", "writting", "writing",
     "'Write' drops the 'e' and keeps one 't': 'writing'."),
    ("Are you {} to the party?", "comming", "coming", "'Come' drops the 'e' and keeps one 'm': 'coming'."),
    ("She is {} medicine in Berlin.", "studing", "studying", "Keep the 'y' before '-ing': 'studying'."),
    ("I {} like this song.", "realy", "really", "'Really' has two 'l's: real + ly."),
    ("It was a great {}.", "experiance", "experience", "It is spelled 'experience', with '-ence'."),
)


def prepositions(rng: random.Random) -> Sentence:
    template, wrong, right, why = rng.choice(PREPOSITIONS)
    return _one(template, wrong, right, why, 10)


def word_choice(rng: random.Random) -> Sentence:
    template, wrong, right, why, weight = rng.choice(WORD_CHOICE)
    return _one(template, wrong, right, why, weight)


def word_order(rng: random.Random) -> Sentence:
    template, wrong, right, why = rng.choice(WORD_ORDER)
    return _one(template, wrong, right, why, 10)


def spelling(rng: random.Random) -> Sentence:
    template, wrong, right, why = rng.choice(SPELLING)
    return _one(template, wrong, right, why, 5)


FAMILIES: dict[str, Callable[[random.Random], Sentence]] = {
    "agreement": agreement,
    "past_tense": past_tense,
    "negation": negation,
    "question": question,
    "articles": articles,
    "countables": countables,
    "comparatives": comparatives,
    "perfect": perfect,
    "verb_patterns": verb_patterns,
    "prepositions": prepositions,
    "word_choice": word_choice,
    "word_order": word_order,
    "spelling": spelling,
}
