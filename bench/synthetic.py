"""Synthetic interaction logs as RecBole atomic files, seeded, at any size (issue 16).

    python -m bench.synthetic --users 10000 --items 5000 --events 500000 --out runs/synthetic/s10k
    python -m bench.synthetic --users 1000000 --items 100000 --events 50000000 --out runs/synthetic/s1m

writes ``<out>/<name>.inter`` (user_id:token, item_id:token, rating:float, timestamp:float) and
``<out>/<name>.item`` (item_id:token, movie_title:token_seq, release_year:token, class:token_seq),
``name`` being the folder's name, so ``load_dataset(out)`` reads it; and, as RecBole's ml-100k
folder has them, a knowledge graph (``<name>.link``: item_id:token, entity_id:token;
``<name>.kg``: head_id:token, relation_id:token, tail_id:token; ``--entities`` per item, 0 for
none) and user attributes (``<name>.user``: user_id, age, gender, occupation; ``--user-file no``
for none). Those two come from their own seeded streams, so ``.inter`` and ``.item`` are the same
bytes with or without them.

The structure a recommender can find:
- item popularity is a power law (Zipf exponent ``alpha`` over a random permutation of items);
- items belong to latent topics, each with one to three genres, an era (release years) and a
  fixed order of its items: "the next item" of a topic;
- each user has a few favourite topics and drifts between them as a Markov chain (stay with
  probability ``stay``, else jump to one of the favourites); within a topic run, the next
  event is the successor of the previous item in the topic's order with probability
  ``follow`` (so sequence models and item-item co-occurrence have something to learn), else
  a fresh draw by popularity within the topic;
- ratings: item quality + user bias + noise, rounded to 1..5; timestamps: per-user start,
  exponential gaps in seconds, some zero gaps (ties, which file order breaks);
- knowledge graph: each film draws its director, writers, producers, cast, subjects, studio,
  language and country from per-relation pools with a heavy tail (Zipf), most people from its
  topic's part of the pool (so shared entities say something about shared taste) and the rest
  from anywhere; a few films of a topic are sequels of the topic's previous film.

Everything is vectorised numpy over chunks of users (one chunk's arrays in memory at a time)
and written by pyarrow: 50M events take minutes and a few GB.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
ADJECTIVES = (
    "Silent", "Broken", "Golden", "Last", "Hidden", "Crimson", "Endless", "Wild", "Lost", "Dark", "Bright",
    "Secret", "Frozen", "Burning", "Little", "Distant", "Electric", "Quiet", "Savage", "Midnight", "Hollow",
    "Iron", "Paper", "Glass", "Lucky", "Velvet", "Northern", "Forgotten", "Restless", "Sweet",
)  # fmt: skip
NOUNS = (
    "River", "Garden", "Empire", "Road", "Summer", "Winter", "Heart", "City", "Kingdom", "Ghost", "Letter",
    "Island", "Machine", "Storm", "Dream", "Promise", "Station", "Harbor", "Mirror", "Horizon", "Circus",
    "Detective", "Planet", "Orchard", "Castle", "Dance", "Frontier", "Signal", "Voyage", "Witness",
)  # fmt: skip
INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
ITEM_HEADER = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
KG_HEADER = "head_id:token\trelation_id:token\ttail_id:token\n"
LINK_HEADER = "item_id:token\tentity_id:token\n"
USER_HEADER = "user_id:token\tage:float\tgender:token\toccupation:token\n"
# relation, entities per film (cast: the rest up to --entities), pool size per film, share drawn from the topic
KG_RELATIONS = (
    ("film.film.directed_by", 1, 0.3, 0.8), ("film.film.written_by", 2, 0.5, 0.7),
    ("film.film.produced_by", 2, 0.25, 0.5), ("film.film.actor", 0, 2.0, 0.6), ("film.film.subjects", 2, 0.02, 0.5),
    ("film.film.production_companies", 1, 0.005, 0.3), ("film.film.language", 1, 0.0, 0.0),
    ("film.film.country", 1, 0.0, 0.0),
)  # fmt: skip
KG_FIXED = 10  # entities per film outside the cast
SMALL_POOLS = {"film.film.language": 30, "film.film.country": 40}
SEQUEL_SHARE = 0.03  # films that are the sequel of their topic's previous film
LINKED_SHARE = 0.95  # films linked to an entity (as 1,598 of ML-100k's 1,682)
OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment", "executive", "healthcare",
    "homemaker", "lawyer", "librarian", "marketing", "none", "other", "programmer", "retired", "salesman",
    "scientist", "student", "technician", "writer",
)  # fmt: skip
SIDE_STREAM = 1 << 40  # seed tag of the .kg/.link/.user stream, apart from every chunk's [seed, first user]
START = 946_684_800  # 2000-01-01, seconds


@dataclass(frozen=True)
class SyntheticConfig:
    users: int = field(default=10_000, metadata={"help": "number of users"})
    items: int = field(default=5_000, metadata={"help": "number of items"})
    events: int = field(default=500_000, metadata={"help": "number of interactions (at least 3 per user)"})
    seed: int = field(default=0, metadata={"help": "one seed for everything"})
    alpha: float = field(default=1.0, metadata={"help": "Zipf exponent of item popularity"})
    topics: int = field(default=0, metadata={"help": "latent topics; 0 = items // 200, at least 4"})
    favourites: int = field(default=3, metadata={"help": "favourite topics per user"})
    stay: float = field(default=0.85, metadata={"help": "probability the next event stays in the topic"})
    follow: float = field(default=0.5, metadata={"help": "probability it is the topic's next item"})
    tie_share: float = field(default=0.05, metadata={"help": "share of zero gaps between events (ties)"})
    chunk_users: int = field(default=50_000, metadata={"help": "users generated and written at a time"})
    entities: int = field(
        default=20, metadata={"help": f"knowledge-graph entities per item (0: no .kg/.link; else >= {KG_FIXED})"}
    )
    user_file: str = field(default="yes", metadata={"help": "write <name>.user with user attributes: yes or no"})

    @property
    def n_topics(self) -> int:
        return self.topics or max(4, self.items // 200)


@dataclass(frozen=True)
class ItemModel:
    """The latent item structure the events are drawn from (kept for tests and checks)."""

    topic: np.ndarray  # [N] topic of each item
    by_topic: np.ndarray  # [N] items sorted by topic; inside a topic, the topic's order ("next" item)
    topic_start: np.ndarray  # [T + 1] topic t is by_topic[topic_start[t]:topic_start[t + 1]]
    cumulative: np.ndarray  # [N] cumulative popularity along by_topic
    weight: np.ndarray  # [N] popularity weight of each item
    quality: np.ndarray  # [N] mean rating of each item


def item_model(config: SyntheticConfig, rng: np.random.Generator) -> ItemModel:
    n, t = config.items, config.n_topics
    topic = np.empty(n, dtype=np.int64)
    topic[rng.permutation(n)] = np.arange(n) % t  # equal-sized topics, random members
    by_topic = np.argsort(topic, kind="stable")  # a random order inside each topic: its "next" chain
    topic_start = np.searchsorted(topic[by_topic], np.arange(t + 1))
    weight = (rng.permutation(n) + 1.0) ** -config.alpha  # Zipf over a random item order
    cumulative = np.cumsum(weight[by_topic])
    quality = np.clip(rng.normal(3.5, 0.5, n), 1.5, 4.8)
    return ItemModel(topic, by_topic, topic_start, cumulative, weight, quality)


def user_lengths(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """[U] events per user: 3 each, the rest spread by heavy-tailed (log-normal) activity."""
    if config.events < 3 * config.users:
        raise ValueError(f"--events must be at least 3 x --users ({3 * config.users}), got {config.events}.")
    activity = rng.lognormal(0.0, 1.0, config.users)
    return 3 + rng.multinomial(config.events - 3 * config.users, activity / activity.sum())


def chunk_events(
    model: ItemModel, lengths: np.ndarray, rng: np.random.Generator, config: SyntheticConfig
) -> dict[str, np.ndarray]:
    """Events of one chunk of users (local user index 0..len(lengths)-1), each user in time order."""
    n_users, m = len(lengths), int(lengths.sum())
    topic_weight = np.bincount(model.topic, weights=model.weight, minlength=config.n_topics)
    favourites = rng.choice(config.n_topics, (n_users, config.favourites), p=topic_weight / topic_weight.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    user = np.repeat(np.arange(n_users), lengths)  # [m]
    first = np.zeros(m, dtype=bool)
    first[starts] = True
    # Topic: a Markov chain per user; a switch re-draws among the user's favourites.
    switch = first | (rng.random(m) > config.stay)
    segment = np.cumsum(switch) - 1
    segment_topic = favourites[user[switch], rng.integers(0, config.favourites, int(switch.sum()))]
    topic = segment_topic[segment]  # [m]
    # Item: a fresh popularity draw inside the topic, then its successors in the topic's order.
    fresh = switch | (rng.random(m) > config.follow)
    run = np.cumsum(fresh) - 1
    run_topic = topic[fresh]
    lo, hi = model.topic_start[run_topic], model.topic_start[run_topic + 1]
    before = np.where(lo > 0, model.cumulative[np.maximum(lo - 1, 0)], 0.0)
    target = before + rng.random(len(run_topic)) * (model.cumulative[hi - 1] - before)
    drawn = np.clip(np.searchsorted(model.cumulative, target, side="right"), lo, hi - 1) - lo  # position in topic
    offset = np.arange(m) - np.flatnonzero(fresh)[run]
    size = (model.topic_start[1:] - model.topic_start[:-1])[topic]
    item = model.by_topic[model.topic_start[topic] + (drawn[run] + offset) % size]
    # Ratings and timestamps.
    bias = rng.normal(0.0, 0.4, n_users)
    rating = np.clip(np.rint(model.quality[item] + bias[user] + rng.normal(0.0, 0.9, m)), 1, 5).astype(np.int8)
    gap = np.rint(rng.exponential(2 * 86_400.0, m))
    gap[rng.random(m) < config.tie_share] = 0.0
    gap[first] = 0.0
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[starts], lengths)
    start = rng.integers(START, START + 2 * 365 * 86_400, n_users)
    timestamp = (start[user] + elapsed).astype(np.int64)
    return {"user": user, "item": item, "rating": rating, "timestamp": timestamp}


def write_items(path: Path, model: ItemModel, config: SyntheticConfig, rng: np.random.Generator) -> None:
    n, t = config.items, config.n_topics
    topic_genres = [" ".join(rng.choice(GENRES, int(rng.integers(1, 4)), replace=False)) for _ in range(t)]
    era = rng.integers(1940, 2020, t)
    year = np.clip(era[model.topic] + np.rint(rng.normal(0, 5, n)).astype(np.int64), 1930, 2025)
    adjective, noun = rng.choice(ADJECTIVES, n), rng.choice(NOUNS, n)
    other = rng.choice(NOUNS, n)
    form = rng.integers(0, 3, n)
    title = np.where(
        form == 0,
        np.strings.add(np.strings.add("The ", adjective), np.strings.add(" ", noun)),
        np.where(
            form == 1,
            np.strings.add(np.strings.add(noun, " of the "), other),
            np.strings.add(np.strings.add(adjective, " "), np.strings.add(noun, " ")),
        ),
    )
    # "Adjective Noun " gets a sequel number so many titles stay distinct.
    title = np.where(form == 2, np.strings.add(title, (np.arange(n) % 9 + 2).astype(str)), title)
    table = pa.table(
        {
            "item_id:token": pa.array(np.arange(1, n + 1)).cast(pa.string()),
            "movie_title:token_seq": pa.array(title.tolist()),
            "release_year:token": pa.array(year).cast(pa.string()),
            "class:token_seq": pa.array([topic_genres[k] for k in model.topic.tolist()]),
        }
    )
    _write_tsv(path, ITEM_HEADER, [table])


def _write_tsv(path: Path, header: str, tables) -> None:
    path.write_text(header)
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with path.open("ab") as handle:
        writer = None
        for table in tables:
            if writer is None:
                writer = pacsv.CSVWriter(handle, table.schema, write_options=options)
            writer.write_table(table)
        if writer is not None:
            writer.close()


# ---------------------------------------------------------------- knowledge graph and user attributes


def _zipf(rng: np.random.Generator, size: int, count: int, alpha: float = 1.0) -> np.ndarray:
    """[count] ranks in [0, size) with P(rank k) proportional to (k + 1)^-alpha: a heavy tail."""
    cumulative = np.cumsum((np.arange(size) + 1.0) ** -alpha)
    return np.minimum(np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right"), size - 1)


def knowledge_triples(model: ItemModel, config: SyntheticConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Triples (head film, relation, tail entity) as [T] arrays of film rows, relation names and
    entity ids, the sequel/prequel pairs included (their tails are film rows, marked by ``film_tail``)."""
    n, topics = config.items, config.n_topics
    heads, relations, tails = [], [], []
    for relation, count, per_film, local in KG_RELATIONS:
        count = count or config.entities - KG_FIXED
        pool = SMALL_POOLS.get(relation) or max(int(per_film * n), 2 * topics, 2)
        owner = np.repeat(np.arange(n), count)
        entity = rng.permutation(pool)[_zipf(rng, pool, len(owner))]  # the popular ones anywhere in the pool
        slice_size = pool // topics
        if local and slice_size >= 2:  # most from the film's topic's slice of the pool
            near = rng.random(len(owner)) < local
            entity[near] = model.topic[owner[near]] * slice_size + _zipf(rng, slice_size, int(near.sum()))
        prefix = relation.rsplit(".", 1)[-1][:3]
        heads.append(owner)
        relations.append(np.full(len(owner), relation))
        tails.append(np.strings.add(f"m.{prefix}", entity.astype(str)))
    # Sequels: a film and the next film of its topic's order.
    position = np.flatnonzero(rng.random(n - 1) < SEQUEL_SHARE)
    same = model.topic[model.by_topic[position]] == model.topic[model.by_topic[position + 1]]
    first, second = model.by_topic[position[same]], model.by_topic[position[same] + 1]
    heads += [first, second]
    relations += [np.full(len(first), "film.film.sequel"), np.full(len(second), "film.film.prequel")]
    tails += [_film_entity(second), _film_entity(first)]
    return {"head": np.concatenate(heads), "relation": np.concatenate(relations), "tail": np.concatenate(tails)}


def _film_entity(rows: np.ndarray) -> np.ndarray:
    return np.strings.add("m.film", (np.asarray(rows) + 1).astype(str))


def write_knowledge(
    folder: Path, name: str, model: ItemModel, config: SyntheticConfig, rng: np.random.Generator
) -> None:
    """``<name>.link`` (most films -> an entity) and ``<name>.kg`` (the films' triples)."""
    triples = knowledge_triples(model, config, rng)
    linked = np.flatnonzero(rng.random(config.items) < LINKED_SHARE)
    link = pa.table({"item_id:token": pa.array(linked + 1).cast(pa.string()), "entity_id:token": _film_entity(linked)})
    _write_tsv(folder / f"{name}.link", LINK_HEADER, [link])
    order = rng.permutation(len(triples["head"]))  # as a real dump: not grouped by relation
    kg = pa.table(
        {
            "head_id:token": _film_entity(triples["head"][order]),
            "relation_id:token": triples["relation"][order],
            "tail_id:token": triples["tail"][order],
        }
    )
    _write_tsv(folder / f"{name}.kg", KG_HEADER, [kg])


def write_users(path: Path, config: SyntheticConfig, rng: np.random.Generator) -> None:
    """``<name>.user``: age (7-73), gender, occupation of every user."""
    n = config.users
    table = pa.table(
        {
            "user_id:token": pa.array(np.arange(1, n + 1)).cast(pa.string()),
            "age:float": pa.array(np.clip(np.rint(rng.gamma(4.0, 8.5, n)), 7, 73).astype(np.int64)),
            "gender:token": pa.array(np.where(rng.random(n) < 0.7, "M", "F")),
            "occupation:token": pa.array(np.array(OCCUPATIONS)[_zipf(rng, len(OCCUPATIONS), n, 0.7)]),
        }
    )
    _write_tsv(path, USER_HEADER, [table])


def generate(config: SyntheticConfig, out: str | Path) -> dict[str, object]:
    """Write ``<out>/<name>.inter`` and ``.item`` (and ``.kg``/``.link``, ``.user`` unless turned
    off); returns paths, counts and seconds."""
    if config.entities and config.entities < KG_FIXED:
        raise ValueError(f"--entities must be 0 (no knowledge graph) or at least {KG_FIXED}, got {config.entities}.")
    if config.user_file not in ("yes", "no"):
        raise ValueError(f"--user-file must be 'yes' or 'no', got {config.user_file!r}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = out.name
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    model = item_model(config, rng)
    lengths = user_lengths(config, rng)
    write_items(out / f"{name}.item", model, config, rng)

    def chunks():
        for first in range(0, config.users, config.chunk_users):
            part = lengths[first : first + config.chunk_users]
            chunk_rng = np.random.default_rng([config.seed, first])  # same seed + chunk size: same file
            events = chunk_events(model, part, chunk_rng, config)
            order = np.argsort(events["timestamp"], kind="stable")  # users interleave, as in a real log
            yield pa.table(
                {
                    "user_id:token": pa.array(events["user"][order] + first + 1).cast(pa.string()),
                    "item_id:token": pa.array(events["item"][order] + 1).cast(pa.string()),
                    "rating:float": pa.array(events["rating"][order]),
                    "timestamp:float": pa.array(events["timestamp"][order]),
                }
            )

    _write_tsv(out / f"{name}.inter", INTER_HEADER, chunks())
    side = np.random.default_rng([config.seed, SIDE_STREAM])
    if config.entities:
        write_knowledge(out, name, model, config, side)
    if config.user_file == "yes":
        write_users(out / f"{name}.user", config, side)
    return {"folder": str(out), "name": name, "events": int(lengths.sum()), "seconds": time.perf_counter() - started}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, spec in SyntheticConfig.__dataclass_fields__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(spec.default), default=spec.default,
                            help=spec.metadata["help"])  # fmt: skip
    parser.add_argument("--out", required=True, help="output folder; its name is the dataset's name")
    return parser


def main(args: argparse.Namespace) -> None:
    config = SyntheticConfig(**{name: getattr(args, name) for name in SyntheticConfig.__dataclass_fields__})
    result = generate(config, args.out)
    print(f"{result['folder']}: {result['events']:,} events in {result['seconds']:.1f} s")


if __name__ == "__main__":
    main(make_parser().parse_args())
