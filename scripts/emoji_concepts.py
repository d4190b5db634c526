"""The everyday concepts of the project's emoji world: a short natural name and its emoji.

Names are what a user types ("dog", not "DOG FACE"); the emoji are rendered from Debian's Noto
Color Emoji. `unicodedata` names are kept beside each for the model card. Caption templates live
here too, so the renderer, the BPE learner and the trainer agree on one text distribution.
"""

import unicodedata

# (name, emoji). Grouped for readability: people, animals, food, vehicles, things, nature.
CONCEPTS = [
    ("girl", "\U0001F467"), ("boy", "\U0001F466"), ("man", "\U0001F468"), ("woman", "\U0001F469"),
    ("baby", "\U0001F476"), ("police officer", "\U0001F46E"), ("construction worker", "\U0001F477"),
    ("cook", "\U0001F9D1\u200D\U0001F373"), ("astronaut", "\U0001F9D1\u200D\U0001F680"),
    ("santa", "\U0001F385"), ("ghost", "\U0001F47B"), ("robot", "\U0001F916"),

    ("dog", "\U0001F436"), ("cat", "\U0001F431"), ("mouse", "\U0001F42D"), ("rabbit", "\U0001F430"),
    ("fox", "\U0001F98A"), ("bear", "\U0001F43B"), ("panda", "\U0001F43C"), ("tiger", "\U0001F42F"),
    ("lion", "\U0001F981"), ("cow", "\U0001F42E"), ("pig", "\U0001F437"), ("frog", "\U0001F438"),
    ("monkey", "\U0001F435"), ("chicken", "\U0001F414"), ("penguin", "\U0001F427"), ("bird", "\U0001F426"),
    ("duck", "\U0001F986"), ("owl", "\U0001F989"), ("horse", "\U0001F434"), ("unicorn", "\U0001F984"),
    ("bee", "\U0001F41D"), ("butterfly", "\U0001F98B"), ("snail", "\U0001F40C"), ("ladybug", "\U0001F41E"),
    ("spider", "\U0001F577\uFE0F"), ("turtle", "\U0001F422"), ("snake", "\U0001F40D"),
    ("dinosaur", "\U0001F996"), ("octopus", "\U0001F419"), ("crab", "\U0001F980"), ("fish", "\U0001F41F"),
    ("dolphin", "\U0001F42C"), ("whale", "\U0001F433"), ("shark", "\U0001F988"), ("crocodile", "\U0001F40A"),
    ("zebra", "\U0001F993"), ("giraffe", "\U0001F992"), ("elephant", "\U0001F418"), ("camel", "\U0001F42B"),
    ("sheep", "\U0001F411"), ("deer", "\U0001F98C"), ("squirrel", "\U0001F43F\uFE0F"),
    ("parrot", "\U0001F99C"), ("flamingo", "\U0001F9A9"), ("gorilla", "\U0001F98D"),

    ("apple", "\U0001F34E"), ("banana", "\U0001F34C"), ("grapes", "\U0001F347"), ("watermelon", "\U0001F349"),
    ("lemon", "\U0001F34B"), ("orange", "\U0001F34A"), ("pear", "\U0001F350"), ("cherries", "\U0001F352"),
    ("strawberry", "\U0001F353"), ("pineapple", "\U0001F34D"), ("tomato", "\U0001F345"),
    ("avocado", "\U0001F951"), ("carrot", "\U0001F955"), ("corn", "\U0001F33D"), ("broccoli", "\U0001F966"),
    ("mushroom", "\U0001F344"), ("bread", "\U0001F35E"), ("croissant", "\U0001F950"),
    ("cheese", "\U0001F9C0"), ("pizza", "\U0001F355"), ("hamburger", "\U0001F354"),
    ("french fries", "\U0001F35F"), ("hot dog", "\U0001F32D"), ("taco", "\U0001F32E"), ("egg", "\U0001F95A"),
    ("sushi", "\U0001F363"), ("doughnut", "\U0001F369"), ("cookie", "\U0001F36A"),
    ("birthday cake", "\U0001F382"), ("ice cream", "\U0001F366"), ("lollipop", "\U0001F36D"),
    ("popcorn", "\U0001F37F"), ("coffee", "\u2615"), ("beer", "\U0001F37A"), ("wine glass", "\U0001F377"),

    ("car", "\U0001F697"), ("bus", "\U0001F68C"), ("ambulance", "\U0001F691"), ("fire engine", "\U0001F692"),
    ("truck", "\U0001F69A"), ("tractor", "\U0001F69C"), ("bicycle", "\U0001F6B2"),
    ("motorcycle", "\U0001F3CD\uFE0F"), ("train", "\U0001F682"), ("airplane", "\u2708\uFE0F"),
    ("helicopter", "\U0001F681"), ("rocket", "\U0001F680"), ("sailboat", "\u26F5"), ("ship", "\U0001F6A2"),
    ("skateboard", "\U0001F6F9"),

    ("desktop computer", "\U0001F5A5\uFE0F"), ("laptop", "\U0001F4BB"), ("keyboard", "\u2328\uFE0F"),
    ("printer", "\U0001F5A8\uFE0F"), ("mobile phone", "\U0001F4F1"), ("telephone", "\u260E\uFE0F"),
    ("television", "\U0001F4FA"), ("camera", "\U0001F4F7"), ("watch", "\u231A"), ("alarm clock", "\u23F0"),
    ("light bulb", "\U0001F4A1"), ("candle", "\U0001F56F\uFE0F"), ("books", "\U0001F4DA"),
    ("pencil", "\u270F\uFE0F"), ("scissors", "\u2702\uFE0F"), ("key", "\U0001F511"), ("lock", "\U0001F512"),
    ("hammer", "\U0001F528"), ("wrench", "\U0001F527"), ("umbrella", "\u2602\uFE0F"),
    ("backpack", "\U0001F392"), ("glasses", "\U0001F453"), ("t-shirt", "\U0001F455"), ("jeans", "\U0001F456"),
    ("dress", "\U0001F457"), ("sneaker", "\U0001F45F"), ("crown", "\U0001F451"), ("ring", "\U0001F48D"),
    ("gift", "\U0001F381"), ("balloon", "\U0001F388"), ("soccer ball", "\u26BD"),
    ("basketball", "\U0001F3C0"), ("baseball", "\u26BE"), ("tennis ball", "\U0001F3BE"),
    ("guitar", "\U0001F3B8"), ("violin", "\U0001F3BB"), ("trumpet", "\U0001F3BA"), ("drum", "\U0001F941"),
    ("microphone", "\U0001F3A4"), ("headphones", "\U0001F3A7"), ("bell", "\U0001F514"),
    ("teddy bear", "\U0001F9F8"), ("house", "\U0001F3E0"), ("tent", "\u26FA"), ("bed", "\U0001F6CF\uFE0F"),
    ("chair", "\U0001FA91"), ("toilet", "\U0001F6BD"), ("bathtub", "\U0001F6C1"), ("door", "\U0001F6AA"),
    ("telescope", "\U0001F52D"), ("microscope", "\U0001F52C"),

    ("tree", "\U0001F333"), ("palm tree", "\U0001F334"), ("cactus", "\U0001F335"),
    ("sunflower", "\U0001F33B"), ("rose", "\U0001F339"), ("sun", "\u2600\uFE0F"), ("moon", "\U0001F319"),
    ("star", "\u2B50"), ("cloud", "\u2601\uFE0F"), ("snowman", "\u26C4"), ("rainbow", "\U0001F308"),
    ("fire", "\U0001F525"),
]

NAMES = [name for name, _ in CONCEPTS]
INDEX = {name: i for i, name in enumerate(NAMES)}

# Concepts drawn alike (the same yellow face with other hair, the same animal-face layout, ...). Random
# scenes rarely hold two of a group, yet a user's "girl" and "boy" in one picture is the demo case:
# train_model.py --lookalike-share mixes scenes with several members of one group into its stream.
LOOKALIKE_GROUPS = {
    "people": ["girl", "boy", "man", "woman", "baby", "police officer", "construction worker", "cook",
               "astronaut", "santa"],
    "animal faces": ["dog", "cat", "mouse", "rabbit", "fox", "bear", "panda", "tiger", "lion", "cow", "pig",
                     "frog", "monkey"],
    "fruit": ["apple", "orange", "lemon", "pear", "tomato", "strawberry", "cherries", "watermelon"],
    "screens": ["desktop computer", "laptop", "television", "mobile phone", "keyboard", "printer", "camera"],
}

# Names that read as plurals or mass nouns take no article.
NO_ARTICLE = {"grapes", "cherries", "french fries", "popcorn", "coffee", "beer", "bread", "cheese",
              "corn", "broccoli", "sushi", "books", "glasses", "jeans", "headphones", "scissors", "fire"}

SINGLE_TEMPLATES = ["{}", "a {}", "a photo of a {}", "a picture of a {}", "an emoji of a {}",
                    "a drawing of a {}", "there is a {}"]
MULTI_TEMPLATES = ["{}", "a photo of {}", "a picture of {}", "there is {}", "an image with {}"]


def with_article(name: str) -> str:
    if name in NO_ARTICLE:
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name


def single_prompt(template: str, name: str) -> str:
    """Fills a SINGLE_TEMPLATES entry; its "a {}" takes the right article (or none)."""
    if template == "{}":
        return name
    head = template[:-len("a {}")] if template.endswith("a {}") else template[:-2]
    return (head + with_article(name)).strip()


def list_phrase(names) -> str:
    """"a dog", "a dog and a cat", "a dog, a cat and an apple"."""
    items = [with_article(n) for n in names]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption(rng, names) -> str:
    """A caption naming every object in `names` (in the given order) from a random template."""
    if len(names) == 1 and rng.random() < 0.6:
        return single_prompt(SINGLE_TEMPLATES[rng.randrange(len(SINGLE_TEMPLATES))], names[0])
    if rng.random() < 0.2:
        return " and ".join(names)
    return MULTI_TEMPLATES[rng.randrange(len(MULTI_TEMPLATES))].format(list_phrase(names))


def unicode_name(emoji: str) -> str:
    return " + ".join(unicodedata.name(ch, "?") for ch in emoji if ch not in "\u200D\uFE0F")


if __name__ == "__main__":
    import random
    rng = random.Random(0)
    print(len(CONCEPTS), "concepts")
    for name, emoji in CONCEPTS[:5]:
        print(name, emoji, unicode_name(emoji))
    for _ in range(5):
        print(caption(rng, rng.sample(NAMES, rng.randint(1, 4))))
