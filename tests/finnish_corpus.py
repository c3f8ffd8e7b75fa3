"""A small Finnish corpus made in the tests, in the forms people have it.

Documents are drawn (seeded) from hand-written Finnish sentences with the
things a sentence splitter trips over: abbreviations (esim., mm., n., klo,
jne.), numbers and dates (1.5.2020, 12.30, ordinals such as "5. toukokuuta"),
quotes and parentheses. ``documents()`` is the gold standard (one list of
sentences per document); the writers give the same documents unsplit, as
JSON Lines, Parquet or one document per line, and as BERT-format text.
"""

from __future__ import annotations

import json
import random

SENTENCES = [
    "Helsinki on Suomen pääkaupunki ja suurin kaupunki.",
    "Kaupungissa asuu noin 670 000 ihmistä.",
    "Suomenlinna rakennettiin 1700-luvulla merilinnoitukseksi.",
    "Linnoitus on nykyään Unescon maailmanperintökohde.",
    "Kokous alkaa klo 12.30 kaupungintalolla.",
    "Esityslistalla on mm. talousarvio ja kaavoitus.",
    "Päätös tehtiin 1.5.2020 pidetyssä kokouksessa.",
    "Juhlat pidetään 5. toukokuuta koulun salissa.",
    "Hän sanoi: ”Tulen huomenna takaisin.”",
    "Sen jälkeen hän lähti kotiin.",
    "Järvessä on paljon kalaa, esim. ahventa, haukea ja kuhaa.",
    "Kalastajat lähtevät vesille jo aamuvarhaisella.",
    "Suomessa on noin 188 000 järveä.",
    "Saimaa on maan suurin järvi.",
    "Talvella järvet jäätyvät, ja jäällä voi hiihtää.",
    "Kevät tulee pohjoiseen myöhemmin kuin etelään.",
    "Lapissa aurinko ei laske kesällä lainkaan.",
    "Kaamos kestää pohjoisimmassa Lapissa lähes kaksi kuukautta.",
    "Kirjasto on avoinna arkisin klo 9–20.",
    "Lainaukset voi uusia verkossa tai puhelimitse.",
    "Tutkimuksen tulokset julkaistaan ensi vuonna.",
    "Aineistoa kerättiin vuosina 2015–2019 (n. 3 000 vastaajaa).",
    "Vastaajista 42,5 % oli naisia.",
    "Tulokset ovat samansuuntaisia kuin aiemmissa tutkimuksissa.",
    "Sauna on suomalaisen kulttuurin tärkeä osa.",
    "Useimmissa kodeissa on oma sauna.",
    "Saunan jälkeen on tapana vilvoitella kuistilla.",
    "Kesämökillä uidaan, saunotaan ja grillataan makkaraa.",
    "Juna lähtee raiteelta 7 kello 8.15.",
    "Matka Tampereelle kestää noin puolitoista tuntia.",
    "Liput kannattaa ostaa etukäteen, sillä junat ovat usein täynnä.",
    "Konduktööri tarkastaa liput junassa.",
    "Yritys palkkasi viime vuonna 25 uutta työntekijää.",
    "Liikevaihto kasvoi 12 prosenttia edellisestä vuodesta.",
    "Toimitusjohtajan mukaan kasvu jatkuu myös tänä vuonna.",
    "Osakkeen hinta nousi uutisen jälkeen.",
    "Mitä kuuluu?",
    "Kiitos hyvää, entä sinulle?",
    "Tervetuloa mukaan!",
    "Ilmoittautuminen päättyy perjantaina.",
]


def documents(count: int = 120, seed: int = 5) -> list[list[str]]:
    """``count`` documents of 3-7 sentences each (seeded), each document different."""
    rng = random.Random(seed)
    result, seen = [], set()
    while len(result) < count:
        document = rng.sample(SENTENCES, rng.randint(3, 7))
        if tuple(document) not in seen:
            seen.add(tuple(document))
            result.append(document)
    return result


def unsplit(document: list[str]) -> str:
    """A document as a dump holds it: its sentences joined by spaces, a paragraph break after the second."""
    return " ".join(document[:2]) + "\n" + " ".join(document[2:])


def bert_text(documents_: list[list[str]]) -> str:
    return "".join("\n".join(document) + "\n\n" for document in documents_)


def jsonl_text(documents_: list[list[str]]) -> str:
    return "".join(
        json.dumps({"id": index, "meta": {"lang": "fi"}, "text": unsplit(document)}, ensure_ascii=False) + "\n"
        for index, document in enumerate(documents_)
    )


def write_parquet(path, documents_: list[list[str]], row_group_size: int = 50) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": list(range(len(documents_))), "text": [unsplit(document) for document in documents_]})
    pq.write_table(table, str(path), row_group_size=row_group_size)


def with_duplicates(documents_: list[list[str]], every: int = 10) -> list[list[str]]:
    """The documents with every ``every``-th one repeated later (exact duplicates, as crawls have)."""
    return documents_ + documents_[::every]
