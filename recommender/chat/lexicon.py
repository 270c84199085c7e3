"""The words the message parser reads: genre, mood and audience phrases, negators, fillers,
relative-time words and counts. Data only (the standard library), so that adding a synonym never
touches the parsing logic in ``understanding``."""

from __future__ import annotations

# Words and phrases for genres, moods and audiences; a phrase may name several genres ("romcom").
# Only genres the catalogue has are used. Foreign words are a cheap few, so that they at least never invert.
GENRE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Action": ("action", "action packed", "explosions", "blow up", "blow stuff up", "shoot em up", "martial arts",
               "kung fu", "adrenaline", "adrenaline rush", "adrenaline pumping", "superhero", "superheroes", "accion",
               "actionfilm"),
    "Adventure": ("adventure", "adventures", "adventurous", "quest", "epic", "epics", "aventura", "aventure",
                  "abenteuer"),
    "Animation": ("animation", "animated", "cartoon", "cartoons", "anime", "animacion", "dessin anime",
                  "zeichentrick"),
    "Children's": ("children", "childrens", "for kids", "for the kids", "kids", "kid", "kid friendly", "family",
                   "family friendly", "year old", "years old", "yr old", "yrs old", "toddler", "toddlers",
                   "little ones", "infantil", "nephew", "niece", "nephews", "nieces", "grandkids",
                   "enfants", "kinder", "kinderfilm", "kiddie", "kiddy"),
    "Comedy": ("comedy", "comedies", "funny", "funnier", "hilarious", "humor", "humour", "humorous", "laughs",
               "laugh", "a good laugh", "comedic", "lighthearted", "light hearted", "feel good", "feelgood",
               "uplifting", "fun", "silly", "comedia", "comedias", "comedie", "comedies", "komodie", "komoedie",
               "lustig", "lustiger", "lustige", "lustigen", "divertida", "divertido", "drole", "gracioso", "lighter",
               "cozy", "cosy", "daft"),
    "Crime": ("crime", "criminal", "gangster", "gangsters", "mafia", "mob", "heist", "heists", "policier", "gritty",
              "caper", "capers", "robbery", "robberies", "bank robbery"),
    "Documentary": ("documentary", "documentaries", "doc", "docs", "docos", "doco", "docu", "docus", "nonfiction",
                    "documental", "documentaire", "dokumentation", "dokumentarfilm"),
    "Drama": ("drama", "dramas", "dramatic", "moving", "touching", "sad", "tearjerker", "tearjerkers", "tear jerker",
              "cry", "crying", "weepy", "weepie", "heartwarming", "heart warming", "emotional", "drame", "dramen",
              "sadder", "thought provoking", "make me think", "makes you think"),
    "Fantasy": ("fantasy", "magic", "magical", "wizards", "dragons", "fairy tale", "fairytale", "fantasia"),
    "Film-Noir": ("film noir", "noir"),
    "Horror": ("horror", "scary", "frightening", "terrifying", "creepy", "spooky", "slasher", "slashers", "gore",
               "gory", "zombie", "zombies", "scared", "scare", "scares", "halloween", "horrorfilm", "horrorfilme",
               "horreur", "dhorreur", "terror", "miedo", "peur", "scarier", "creepier", "spookier", "nightmares",
               "monster",
               "monsters"),
    "Musical": ("musical", "musicals", "singing", "song and dance", "musicales", "comedie musicale"),
    "Mystery": ("mystery", "mysteries", "mysterious", "whodunit", "whodunnit", "detective", "detectives", "sleuth",
                "misterio"),
    "Romance": ("romance", "romances", "romantic", "love story", "love stories", "date night", "chick flick",
                "chick flicks", "romantique",
                "romantico", "romantica", "romantisch", "romantischer", "romantischen", "liebesfilm"),
    "Sci-Fi": ("sci fi", "scifi", "science fiction", "space", "aliens", "robots", "futuristic", "spaceship",
               "spaceships", "mind bending", "mindbending", "mind blowing", "ciencia ficcion", "science fiction"),
    "Thriller": ("thriller", "thrillers", "spy", "spies", "espionage", "suspense", "suspenseful", "tense",
                 "gripping", "edge of my seat",
                 "edge of your seat", "edge of the seat", "on the edge of my seat", "nail biting", "nailbiter",
                 "nail biter"),
    "War": ("war", "war movie", "war movies", "war film", "war films", "wartime", "military", "ww2", "wwii",
            "world war", "guerra", "guerre", "krieg", "kriegsfilm"),
    "Western": ("western", "westerns", "cowboy", "cowboys", "wild west"),
}  # fmt: skip
MULTI_GENRE = {"romcom": ("Romance", "Comedy"), "romcoms": ("Romance", "Comedy"), "rom com": ("Romance", "Comedy"),
               "rom coms": ("Romance", "Comedy"), "romantic comedy": ("Romance", "Comedy")}  # fmt: skip
# Chat-speak for the words the parser reads: "from b4 1985", "frm the 80s", "moar".
CHAT_SPEAK = {"moar": "more", "sth": "something", "smth": "something", "b4": "before", "frm": "from", "bfore": "before",
              "aftr": "after", "wiv": "with"}  # fmt: skip
# Emoji people use for a kind of film, read as the word they stand for.
EMOJI_WORDS = {"🤠": "western", "👻": "spooky", "🎃": "halloween", "😱": "scary", "💀": "horror", "🧟": "zombies",
               "😂": "funny", "🤣": "funny", "😆": "funny", "😭": "sad", "💔": "sad", "😢": "sad", "❤️": "romantic",
               "❤": "romantic", "💕": "romantic", "😍": "romantic", "🚀": "space", "👽": "aliens", "🤖": "robots",
               "💥": "explosions", "🔫": "action", "🕵️": "detective", "🕵": "detective", "🧙": "wizards",
               "🐉": "dragons", "🎶": "musical", "🎵": "musical", "👶": "kids", "🧒": "kids", "🪖": "war"}  # fmt: skip
# A few words in scripts without spaces between words (or not folded to ASCII): found inside a token.
SCRIPT_GENRES = {"喜剧": "Comedy", "喜劇": "Comedy", "コメディ": "Comedy", "комеди": "Comedy", "恐怖": "Horror",
                 "ホラー": "Horror", "ужас": "Horror", "爱情": "Romance", "романтич": "Romance"}  # fmt: skip
# "for adults": leave out children's films (Animation stays: "animated but for grown ups").
ADULT_PHRASES = ("for adults", "adults only", "adult", "adults", "grown up", "grown ups", "grownup", "grownups",
                 "for grown ups", "mature")  # fmt: skip
NEGATOR_PHRASES = ("rather than", "no", "not", "dont", "doesnt", "didnt", "wont", "without", "nothing", "none", "avoid",
                   "except",
                   "never", "neither", "nor", "hate", "hates", "hated", "dislike", "dislikes", "detest", "loathe",
                   "arent", "isnt", "skip", "exclude", "excluding", "minus", "rather not",
                   "anything but", "everything but", "other than", "no more", "sick of", "tired of", "enough of",
                   "enough with", "done with", "bored of", "bored with", "fed up with", "had enough of",
                   "no longer", "not into", "instead of", "cant stand", "not a fan of",
                   "not a big fan of", "not a huge fan of", "not really a fan of", "not much of a fan of",
                   "not really into", "not big on", "not keen on",
                   "pas", "pas de", "sans", "sin",
                   "keine", "kein", "keinen", "nicht", "ohne", "nada de")  # fmt: skip
# Phrases that hold a negator word but negate nothing.
NEGATOR_WORDS = {phrase for phrase in NEGATOR_PHRASES if " " not in phrase}
IDLE_PHRASES = ("never mind", "nevermind", "no thanks", "no thank you", "not sure", "dont know", "dont mind",
                "dont care", "no idea", "nothing but", "no matter", "not bad", "doesnt matter", "does not matter",
                "why not", "why dont", "how about",
                # greetings and questions about the bot name no film: "good morning", "are you a robot"
                "good morning", "good night", "good evening", "good afternoon", "are you a robot", "are you a bot",
                "are you human", "are you an ai", "are you real",
                # a child's fear explains, it asks for nothing: "my youngest gets scared easily"
                "gets scared", "scared easily", "scares easily", "easily scared",
                # questions that ask for what follows: "don't you have any horror?", "isn't there a western?"
                "dont you", "dont u", "do you not", "isnt there", "arent there", "is there not", "havent you got",
                "have you not got",
                # not having seen a kind of film negates nothing: "never seen a noir, surprise me"
                "never seen", "never watched", "never tried", "havent seen", "havent watched", "not seen")  # fmt: skip
RECENT_PHRASES = (
    "new",
    "recent",
    "newer",
    "newest",
    "latest",
    "new releases",
    "new release",
    "modern",
    "recently",
    "last few years",
    "past few years",
    "last couple of years",
    "past couple of years",
    "recent years",
    "newish",
    "fairly new",
    "pretty new",
    "quite new",
    "relatively new",
    "reasonably new",
    "fairly recent",
)
OLD_PHRASES = ("old", "older", "classic", "classics", "oldies", "vintage", "golden age",
               "old school", "oldschool", "old timey")  # fmt: skip
# Words that let a negation reach over them: "no horror or thrillers", "don't want anything scary".
TRANSPARENT = {"and", "or", "any", "anything", "more", "too", "very", "really", "so", "overly", "movie", "movies",
               "film", "films", "stuff", "things", "kind", "kinds", "of", "type", "types", "genre", "a", "an", "the",
               "want", "like", "please", "at", "all", "ones", "anymore", "much", "something", "that", "is", "are",
               "i", "im", "to", "watch", "see", "in", "thanks", "thank", "you", "particularly", "another", "with",
               "show", "me", "give", "for", "mood", "these", "those", "this", "from", "it", "into", "even", "again",
               "id", "would", "wanna", "quiero", "una", "un", "une", "de", "des", "le", "la", "les", "el", "los",
               "bitte", "por", "favor", "filme", "pelicula", "peliculas", "ever"}  # fmt: skip
# Words that end a negation once it has governed something: "no horror give me comedy".
RESUME = {"give", "want", "love", "prefer", "maybe", "perhaps", "instead", "rather", "show", "need", "looking",
          "just", "only", "ok", "okay", "fine", "enjoy", "loves", "likes", "how", "what"}  # fmt: skip
# Glue that may sit between "and"/"or" and the next item of a negated list ("no horror or any thrillers").
LIST_GLUE = {"a", "an", "the", "any", "more", "too", "very", "really", "overly", "even", "anything", "something"}
CLAUSE_WORDS = {"but", "though", "however", "although", "because", "while", "whereas", "yet", "cause", "coz", "cuz"}
REASON_WORDS = {"because", "cause", "coz", "cuz"}  # a clause they open explains, it asks nothing
FILLERS = TRANSPARENT | {
    "me", "my", "show", "give", "find", "recommend", "suggest", "some", "good", "great", "nice", "for", "with", "from",
    "about", "tonight", "today", "maybe", "perhaps", "would", "id", "could", "can", "get", "lot", "lots", "what",
    "whats", "how", "hi", "hello", "hey", "ok", "okay", "yes", "also", "as", "well", "it", "one", "this", "be", "we",
    "us", "our", "but", "else", "other", "others", "similar", "again", "now", "just", "only", "still", "have",
    "watched", "seen", "liked", "loved", "enjoyed", "was", "were", "had", "feel", "mood", "where", "set", "by", "than",
    "rather", "year", "years", "s", "between", "before", "after", "since", "until", "till", "havent", "didnt",
    "wasnt", "isnt", "sure", "any", "been", "m", "ve", "d", "ll", "re", "got", "pls", "plz", "please", "need",
    "looking", "look", "should", "next", "suggestion", "suggestions", "recommendation", "recommendations", "help",
    "there", "do", "does", "did", "idk", "surprise", "bored", "cool", "weekend", "night", "evening", "options",
    "option", "picks", "pick", "titles", "choices", "results", "flick", "flicks", "lol", "haha", "hmm", "um", "uh",
    "kinda", "sorta", "guess", "honestly", "ideally", "whole", "both", "she", "he", "they", "them", "her", "his",
    "their", "you", "your", "are", "am", "will", "make", "makes", "keeps", "keep", "made", "watching", "said",
    "say", "lets", "let", "fresh", "scratch", "everything", "mind", "yeah", "yep", "sounds", "awesome", "perfect",
    "thx", "ty", "cheers", "okey", "k", "bit", "little", "way", "which", "who", "why", "when", "time", "mean",
    "try", "trying", "think", "want", "wanted", "wants", "fine", "right", "go", "going", "up", "if", "on", "off",
    "out", "or", "and", "not", "no", "dont", "nothing", "never", "instead", "prefer", "ones", "vibes",
    "vibe", "style", "esque", "type", "kind", "sort", "rush", "release", "releases", "friday", "saturday",
    "sunday", "stay", "home", "couch", "popcorn", "days", "day", "tomorrow", "later", "eh", "meh", "oh", "ah",
    "welp", "alright", "watchable", "decent", "solid", "interesting", "new", "definitely", "absolutely", "ideas",
    "idea", "ask", "asking", "tell", "list", "top", "exactly", "wonder", "wondering", "movie", "love", "loves",
    "like", "likes", "enjoy", "earlier", "sometime", "anytime", "filters", "buddy", "bro", "dude", "mate", "friend",
    "friends", "pal", "sir", "quick", "quickly", "either", "last", "previous", "less", "somewhere", "its",
    "preferably", "filter", "limit", "limits", "restriction", "restrictions", "requirement", "exclusion",
    "exclusions", "matter", "decade", "decades", "era", "u", "r", "ur", "idc", "thing", "gimme", "lemme", "wanna",
    "gonna", "entertain", "looks", "seems", "sound", "combo", "hiya", "bye", "goodbye", "helpful", "cya", "released",
    "around", "circa", "roughly", "approximately",
    "born", "childhood", "here", "most", "forth", "few", "thatll", "itll", "da", "sumthin", "smth", "tonite",
    "nite", "2nite", "best", "wife", "husband", "girlfriend", "boyfriend", "partner", "marathon", "mix", "doing",
    "open", "light", "plenty", "especially", "such", "example", "instance", "particular",
}  # fmt: skip
# Words that steer a conversation but name nothing to look for ("no horror though", "comedies anyway",
# "ok then, westerns"): never a free-text search term, never an avoided word (issue 28).
DISCOURSE_FILLERS = {
    "though", "although", "anyway", "anyways", "anyhow", "then", "actually", "whatever", "suppose", "possible",
    "possibly", "nah", "naw", "nope", "ugh", "basically", "otherwise", "preferably", "entirely", "literally", "thats",
    "oops", "meant", "sorry", "erm", "hmm", "hmmm", "umm", "wait", "works", "well", "really", "truly", "totally",
    "seriously", "instead", "else", "perhaps", "probably", "guess", "nvm", "btw", "tho", "pls", "please", "plz",
    "thanks", "thank", "ok", "okay", "fine", "cool", "great", "sure", "yes", "yeah", "no", "nothing", "something",
    "anything", "stuff", "besides", "somewhat", "somehow", "simply", "mostly", "mainly", "generally", "typically",
    "maybe", "again", "now", "first", "second", "time", "go", "ahead", "hey", "hi", "hello", "lol", "lmao", "oh",
    "ah", "uh", "um", "yo", "alright", "allright", "right", "so", "very", "quite", "pretty", "rather", "kinda",
    "sorta", "kind", "sort", "either", "neither", "too", "also", "still", "yet", "already", "ever", "even",
    "asked", "remember", "told", "repeat", "said", "saying", "mentioned", "fairly", "real", "ive", "youve", "weve",
    "times", "twice", "thrice",
}  # fmt: skip
FILLERS |= DISCOURSE_FILLERS
# Words with no topic in a free-text query ("what should I watch next?" leaves no query).
_QUERY_WORDS = frozenset(
    """a about after an and any anything are be best can could did do does else feel film films find for get give
    good great hey hi hello i id im in is it its just kind let lets like maybe me mood movie movies my need next
    nice now of ok okay on one ones option options or other pick picks please pls recommend recommendation
    recommendations see should show so some something suggest suggestion suggestions thank thanks that the
    this to today tonight very really want wanna watch watching what whats which with would you your at by as
    surprise bored entertain""".split()
)
QUERY_FILLERS = _QUERY_WORDS | DISCOURSE_FILLERS
ADDITIVE = {"also", "plus", "additionally"}
DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
                "seventies": 1970, "eighties": 1980, "nineties": 1990}  # fmt: skip
RECENT_SPAN = 3  # "recent" = the catalogue's last three years
OLD_GAP = 25  # "old"/"classic" = at least this many years before the catalogue's newest year
NOT_OLD_GAP = 20  # "nothing too old" = from this many years before the newest year
BLACK_AND_WHITE_GAP = 35  # "black and white" = this many years before the newest year (colour took over in the 60s)
NOT_RECENT_GAP = 5  # "not too recent" = up to this many years before the newest year
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "vs", "sr"}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
                "couple": 2, "dozen": 12, "hundred": 100, "thousand": 1000, "million": 1_000_000,
                "billion": 1_000_000_000, "gazillion": 10**12}  # fmt: skip
COUNT_NOUNS = {"movies", "movie", "films", "film", "options", "option", "picks", "titles", "recommendations",
               "suggestions", "ones", "results", "things", "flicks", "choices", "recs", "more"}  # fmt: skip

YEAR_WORDS = {"before", "after", "from", "since", "until", "till", "pre", "post", "prior", "between", "early",
              "mid", "late", "the", "in", "up", "to", "on", "onwards", "onward", "older", "newer", "earlier",
              "later"}  # fmt: skip

# Titles left out by a name fragment: "not another Star Trek", "no more Batman movies" (issue 28).
# Phrases that open an exclusion of titles (built into the parser's "exclude" cue).
EXCLUDE_CUES = ("not like", "not", "neither of", "neither", "no more", "nothing like", "anything but", "except",
                "other than",
                "no", "without", "skip",
                "remove", "get rid of", "less like", "dont want to see", "do not want to see", "dont wanna see",
                "dont need to see", "dont want to watch", "do not want to watch", "dont wanna watch", "dont want",
                "do not want", "dont wanna",
                "exclude", "nothing", "sick of", "tired of", "enough of", "enough with", "done with",
                "none of")  # fmt: skip
# Words between the cue and a fragment that say "the whole series": "not ANOTHER Star Trek", "no MORE Batman".
FRANCHISE_CUES = {"another", "more", "any", "anymore", "other", "those", "these", "all", "enough", "sick", "tired"}
# Words after a fragment that say the same: "no Batman MOVIES", "no more Star Trek SEQUELS".
SERIES_NOUNS = {"movies", "films", "flicks", "ones", "sequels", "prequels", "series", "franchise", "saga", "trilogy",
                "stuff", "things"}  # fmt: skip
# Words that may sit before a fragment without being part of it.
FRAGMENT_GLUE = {"another", "more", "any", "anymore", "other", "those", "these", "all", "the", "a", "an", "of",
                 "with", "from"}  # fmt: skip
# Capitalised words that name a language or a country, not a series: "nothing French" is no "French Kiss".
NOT_FRAGMENTS = {"french", "german", "italian", "spanish", "english", "british", "american", "japanese", "chinese",
                 "korean", "indian", "russian", "swedish", "danish", "foreign", "european", "hollywood",
                 "disney"}  # fmt: skip
# Words that name a kind of film more often than a series, though titles hold them: "no dark films", "no wild
# stuff", "I don't want ghost stories" (lower case, one word); "no batman movies" stays the Batman films.
KIND_WORDS = set(
    """
dark wild heavy light long short old new christmas holiday ghost ghosts love sad happy big little small bad good
great true real crazy mad dead black white red blue green deep hard fast slow loud quiet cold hot strange weird violent
gory bloody silly stupid boring cheesy sexy naked twisted fear crash speed heat night space monster monsters zombie
vampire vampires war family kids school sports dog dogs cat cats
""".split()
)
FRAGMENT_MIN_CHARS = 4  # a one-word fragment this short ("war", "it") is no franchise
FRAGMENT_MAX_FILMS = 20  # a fragment in more titles than this is an ordinary word ("love": 29), not a series

# How a reply claims a film's genre: "a classic western", "this comedy". Only words a reader takes as the
# film's genre; loose ones ("an adventure", "a fun ride") are left out. A reply that gives a named film a
# genre its card does not show is refused (issue 28: "Blade Runner, a comedy").
GENRE_CLAIMS = {
    "Action": r"action (?:film|movie|flick|thriller|comedy|picture)s?", "Animation": r"animated|animation|cartoons?",
    "Children's": r"children'?s (?:film|movie)s?|kids'? (?:film|movie)s?|family (?:film|movie)s?",
    "Comedy": r"comed(?:y|ies)", "Crime": r"crime (?:film|movie|drama|thriller|story|caper)s?",
    "Documentary": r"documentar(?:y|ies)", "Drama": r"dramas?", "Fantasy": r"fantasy", "Film-Noir": r"noir",
    "Horror": r"horror", "Musical": r"musicals?", "Mystery": r"myster(?:y|ies)|whodunn?it",
    "Romance": r"romance|romantic (?:film|movie|comedy|drama)", "Sci-Fi": r"sci-?fi|science[- ]fiction",
    "Thriller": r"thrillers?", "War": r"war (?:film|movie|drama|story|epic)s?", "Western": r"westerns?",
}  # fmt: skip
# Words whose typing slips cost a reading ("lvoed Scream", "soomething like Fargo", "i askeed for"): a word one
# slip from one of these, and no word of the catalogue's titles, is read as it (issue 28's simulated people).
MEND_WORDS = ("something", "similar", "loved", "liked", "enjoyed", "really", "watched", "already", "please",
              "thanks", "asked", "again", "films", "movies", "remember", "boring", "anything", "nothing", "another",
              "instead", "though", "anyway", "recommend", "suggest", "maybe", "great", "awesome", "favourite",
              "favorite", "looking", "rather", "prefer", "science", "fiction", "story", "stories", "drama", "movie",
              "scifi", "hated", "enough", "different", "first", "second", "third", "fourth", "fifth")  # fmt: skip
# "show me more" may open and close with these: "ok so show me different ones if you can".
SHOW_MORE_OPENERS = ("please", "ok", "okay", "and", "so", "hmm", "well", "um", "hey", "hi", "right", "yeah", "alright",
                     "cheers", "mate", "thanks", "thx", "cool", "nice", "great", "got", "have you got", "do you have",
                     "you got", "any chance of")  # fmt: skip
SHOW_MORE_TAILS = ("please", "options", "results", "suggestions", "films", "movies", "of these", "like these",
                   "of those", "if you can", "thanks", "thank you", "thx", "pls", "plz", "now", "then")  # fmt: skip
# Words that may sit between a count and its noun ("3 good comedies"), and genre plurals that count films.
COUNT_ADJECTIVES = {"sci", "fi", "good", "great", "funny", "scary", "different", "random", "romantic", "other",
                    "classic", "animated", "kids", "family", "old", "short", "sad", "foreign", "cheesy",
                    "light", "feel", "war", "horror", "action", "crime", "western", "spy", "silly",
                    "disney", "christmas", "holiday", "adventure", "comedy", "drama", "thriller", "fantasy",
                    "mystery", "romance", "documentary", "musical", "noir", "animation"}  # fmt: skip
GENRE_MASS_NOUNS = {"scifi", "horror", "action", "animation", "noir", "sci"}  # "gimme 10 scifi", "5 horror"
GENRE_SINGULARS = {
    "comedy",
    "drama",
    "thriller",
    "western",
    "musical",
    "horror",
    "romance",
    "documentary",
    "mystery",
    "cartoon",
    "classic",
    "noir",
    "fantasy",
    "romcom",
    "flick",
    "film",
    "movie",
}  # "one good comedy"
GENRE_PLURALS = {"comedies", "dramas", "thrillers", "westerns", "musicals", "horrors", "romances", "documentaries",
                 "cartoons", "mysteries", "romcoms", "actions", "adventures", "classics", "noirs", "fantasies",
                 "horror", "action", "comedy", "drama", "thriller", "western", "musical", "documentary", "war",
                 "sci fis", "scifis"}  # fmt: skip

# Counts ("give me 3 options", ``counts``): words skipped between a count and its noun; words that may
# follow a count without being one ("one of those", "a dozen"); the words before such a word that make it
# a count after all ("just one", "give me a couple"); and words that make any number a count ("top 5").
COUNT_SKIPPED = {"of", "more", "good", "great", "new", "old", "a"}
AMBIGUOUS_COUNTS = {"one", "couple", "dozen", "hundred", "thousand", "million"}
AMBIGUOUS_COUNT_LEADS = {"just", "only", "a", "top", "me", "give", "recommend", "show", "pick", "exactly", ""}
# The only other words of a message that is a count: "actually 5", "make it 5 please", "just give me 3".
BARE_COUNT_WORDS = {"actually", "make", "it", "please", "pls", "plz", "just", "only", "ok", "okay", "lets", "do",
                    "say", "maybe", "instead", "then", "how", "about", "now", "give", "me", "show", "more", "like",
                    "um", "hmm", "nah", "no", "rather", ",", ".", "!", "?", "of", "them", "those", "us", "i", "id",
                    "would", "want", "can", "could", "you", "get"}  # fmt: skip
COUNT_MARKERS = {"top", "just", "only", "exactly"}

# Years (``years``): a decade's part ("early 90s": its first four years, offsets from the decade's start);
# the word before a year that bounds it from above ("before 1990"; those in BY_YEAR include it: "until 1990")
# or from below ("after 1990"; "from" only with FROM_ON after the year: "from 1990 on").
DECADE_PARTS = {"early": (0, 3), "mid": (3, 6), "late": (6, 9)}
BEFORE_YEAR = {"before", "pre", "until", "till", "prior", "older", "earlier"}
BY_YEAR = {"until", "till", "to"}
APPROXIMATE_YEAR = {"around", "circa", "ca", "roughly", "approximately", "about", "ish"}  # "around 1990": 1988-1992
APPROXIMATE_SPAN = 2
AFTER_YEAR = {"after", "since", "post", "newer", "later", "onwards", "from"}
# "older than 1990", "more recent than the 80s": the comparative before "than" is the bounding word.
COMPARATIVES = {"older": "older", "earlier": "earlier", "newer": "newer", "later": "later", "recent": "newer"}
# "too violent", "way too much violence", "less violent": the word after is what the person wants less of.
LESS_OF = {"too", "overly", "less", "fewer"}
# Avoided words that say what a film holds, so films whose text is close to them move down the list
# (``Filters.avoid``); the rest ("it was boring", "too long", "overrated") are verdicts or lengths no
# text similarity reads, and only get the note that nothing filters on them.
AVOIDABLE_WORDS = set(
    """
violent violence bloody blood gory gore graphic brutal brutality gruesome sadistic torture killing killings
sappy mushy schmaltzy soppy cheesy corny sentimental melodramatic
depressing bleak dark grim heavy serious sad tragic disturbing
weird silly stupid crude raunchy gross vulgar swearing
slasher slashers zombie zombies ghost ghosts monster monsters aliens vampires vampire
scary creepy spooky sex sexy nudity explicit drugs disney cartoonish
""".split()
)
FROM_ON = {"on", "onwards", "onward"}

# Genres and ages (``understanding``): "new" is recent before these (and a count noun or a genre);
# "a 6 year old" is a child only after a number; black-and-white phrases are "old", older still.
NEW_THINGS = {"stuff", "releases", "release"}
AGE_PHRASES = {"year old", "years old", "yr old", "yrs old"}
BLACK_AND_WHITE_PHRASES = ("black and white", "b w", "silent", "silent era")
# Words after a cue that are no title ("like from the 90s"), besides the lexicon's phrases and decades.
# "not a fan" (of what was shown) names no film, though "a fan" is how "The Fan" is typed.
NOT_TITLE_AFTER_CUE = {"from", "before", "after", "since", "the 90s", "for", "a fan", "a big fan", "a huge fan",
                       "much of a", "really a fan"}  # fmt: skip

# Titles in a message (``title_cues``): words after a cue that are no title; pronouns and the like ("like
# it", "seen them"); words that may open a clause before a title ("hmm Cemetery Man was boring"); and the
# verdicts after a title that make it a dislike ("Titanic was boring") or a like ("Heat was great").
NOT_TITLE = {"something", "anything", "movies", "films", "movie", "film", "stuff", "any", "ones", "the ones"}
TITLE_PRONOUNS = {"it", "that", "this", "them", "those", "these", "both", "all", "one", "some", "most", "a few",
                  "half", "many", "several", "few", "the first",
                  "the last", "a lot", "you", "me", "him", "her", "so", "too", "to", "sure", "thanks", "way", "idea",
                  "more"}  # fmt: skip
# A list of titles ends at a request: "hated the godfather, show me something else" ("The Show" is a film).
REQUEST_VERBS = {"show", "give", "find", "recommend", "suggest", "get", "what", "how", "can", "could", "would",
                 "looking", "searching", "hoping", "wanting", "thinking", "need", "something", "anything",
                 "please", "pls", "maybe", "now", "then", "so", "got", "have", "want", "any", "i", "im", "ive", "id",
                 "we", "you", "my"}  # fmt: skip
CLAUSE_OPENERS = {"hmm", "hm", "ok", "okay", "so", "well", "um", "uh", "oh", "ah", "hey", "hi", "right", "yeah",
                  "nah", "ugh", "and", "also", "plus", "honestly", "sadly", "lol"}  # fmt: skip

# Lifting a filter ("remove the romance filter", "forget the year", "any genre is fine"): the verbs, and the
# words that name the year or the genre filter as a whole.
LIFT_WORDS = {"remove", "drop", "clear", "forget", "lose", "ignore", "undo", "cancel", "lift", "unfilter", "rid"}
LIFT_YEAR_WORDS = {"year", "years", "decade", "decades", "date", "dates", "era", "eras", "period"}
LIFT_GENRE_WORDS = {"genre", "genres"}
ALLOWED_WORDS = {"fine", "ok", "okay", "alright", "allowed", "acceptable"}  # "war is fine": no longer excluded
# Complaints, never a wish: "it was boring" leaves "boring" as a word to avoid, not to search for.
COMPLAINT_WORDS = {"boring", "bad", "awful", "terrible", "dull", "rubbish", "crap", "garbage", "horrible", "overrated"}
# After a title: "Titanic was boring" (also "meh", "the worst", and "slow" / "long", which about a film seen are
# complaints but in a wish are not: "a long epic").
BAD_VERDICTS = (*sorted(COMPLAINT_WORDS), "meh", "the worst", "slow", "long")
# Between a genre and a complaint about it: "westerns are boring", "horror is so overrated", "musicals r dull".
COMPLAINT_GLUE = {"are", "is", "r", "were", "was", "so", "really", "rly", "too", "kinda", "pretty", "just", "all",
                  "always", "usually", "mostly", "get", "getting", "feel", "seem", "a", "hard", "big"}  # fmt: skip
COPULAS = {"are", "is", "r", "were", "was", "s"}  # "horror is a no": a "no" after one of these refuses the genre
# After a negator there: "comedies are not my thing", "westerns aren't for me".
NOT_FOR_ME = ("my thing", "for me", "any good", "my cup", "my kind")
# After "wasn't" / "isn't": "Fargo wasn't for me" is a dislike.
NOT_VERDICTS = ("for me", "my thing", "my cup of tea", "my kind of", "any good", "that good", "good", "great", "fun",
                "funny", "worth it")  # fmt: skip
GOOD_VERDICTS = ("great", "amazing", "awesome", "good", "brilliant", "fantastic", "the best", "excellent", "fun",
                 "perfect", "incredible")  # fmt: skip
CUE_GLUE = LIST_GLUE | {"another", "with", "too"}  # skipped after a cue before looking for a genre or decade
SEED_AFTER_TITLE = ("style", "esque", "like", "type", "vibe", "vibes", "kind of", "sort of", "but", "feel", "energy")
# A "like" cue after one of these in its clause excludes: "I don't want anything like Scream".
NEGATIONS_BEFORE_LIKE = ("no", "not", "dont", "don't", "doesnt", "doesn't", "never", "nothing", "without", "rather not",
                         "hate", "hates")  # fmt: skip
# Words before "like" that make it "films like": "a comedy like Groundhog Day", "a classic like Casablanca".
BEFORE_LIKE = ("comedy", "comedies", "drama", "dramas", "thriller", "thrillers", "western", "westerns", "musical",
               "musicals", "horror", "action", "romance", "romances", "mystery", "mysteries", "documentary",
               "documentaries", "war", "fantasy", "cartoon", "cartoons", "noir", "sci fi", "scifi", "classic",
               "classics", "good", "great", "funny", "scary", "romantic", "fun", "one", "flick", "flicks", "title",
               "titles", "else", r"(?:19)?\d0s", "silly", "dark", "sad", "light", "epic", "cheesy", "clever", "smart",
               "weird", "quirky", "gritty", "cozy", "scary", "stupid", "dumb", "thing", "things")  # fmt: skip
