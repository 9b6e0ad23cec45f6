"""Known rumors: paraphrases found, unrelated and same-topic text not, located in long texts; limits."""

from __future__ import annotations

import dataclasses
import itertools
import random

import opencc
import pytest

from synthguard.errors import UsageError
from synthguard.review.risks import RiskCategory
from synthguard.review.rumors import LSH_RECALL, RefutationNotice, RumorEntry, RumorIndex, RumorMatch

S2T = opencc.OpenCC("s2t")

#: Claims, each with three (word, synonym) pairs that a paraphrase may swap.
CLAIMS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "banlangen": (
        "喝板蓝根可以预防新冠病毒感染，专家建议每天早晚各喝一包，连续喝七天效果最好",
        [("可以", "能够"), ("专家", "医生"), ("效果最好", "效果最佳")],
    ),
    "tapwater": (
        "本市自来水厂检测出致癌物质超标，市民近期千万不要直接饮用自来水，请转告家人",
        [("千万不要", "切勿"), ("市民", "居民"), ("转告", "告诉")],
    ),
    "5g": (
        "5G基站的电磁辐射会导致癌症和失眠，小区附近已经有多名老人因此住院",
        [("导致", "引起"), ("多名", "好几位"), ("已经", "已")],
    ),
    "salt": (
        "吃加碘食盐能防止核辐射伤害，各大超市的食盐已经被市民抢购一空",
        [("防止", "抵御"), ("抢购一空", "抢光了"), ("各大", "多家")],
    ),
    "chip": (
        "The new vaccine contains tiny microchips that let the government track your location, "
        "and doctors are hiding it from patients",
        [("tiny", "small"), ("track", "follow"), ("hiding it from", "concealing it from")],
    ),
}
PREFIX = {"zh": "紧急通知：", "en": "URGENT: "}
INLINE = {"zh": "据说", "en": "reportedly "}

UNRELATED = [
    "本市自来水厂今日完成管网改造，经检测各项水质指标全部符合国家标准",
    "市疾控中心提醒市民，流感高发季节请注意勤洗手、多通风",
    "国家卫健委发布新版诊疗方案，明确了重症患者的救治流程",
    "多地超市推出周末促销活动，食用油和大米价格有所下降",
    "工信部表示，今年将新建5G基站六十万个，实现乡镇全覆盖",
    "专家提醒，老年人冬季应注意保暖，避免长时间待在户外",
    "该小区附近新开了一家社区医院，方便老人就近看病",
    "板蓝根是一种常见的中药材，主要产于河北和安徽等地",
    "气象台预计明天有中到大雨，请市民出行携带雨具",
    "教育部公布了今年高考报名人数，比去年增加了四十万人",
    "这家公司第三季度营收同比增长百分之十二，净利润创新高",
    "铁路部门将在春运期间加开临时列车，满足旅客出行需求",
    "本届运动会共有三千多名运动员参赛，赛期为十天",
    "科学家在南极冰层下发现了一种新的微生物",
    "市政府召开新闻发布会，通报了城市更新项目的最新进展",
    "这部电影上映首周票房突破五亿元，观众评价普遍较好",
    "我国成功发射一颗通信卫星，卫星顺利进入预定轨道",
    "图书馆延长了开放时间，周末也可以预约自习座位",
    "央行宣布下调存款准备金率零点五个百分点",
    "地铁三号线将于下月开通试运营，全线共设二十座车站",
    "医生建议每天保持七小时以上的睡眠，有助于提高免疫力",
    "超市的食盐供应充足，价格保持稳定，市民无需囤积",
    "核电站运行安全，周边辐射水平处于正常范围",
    "研究人员正在评估新疫苗在老年人群中的有效性",
    "交警部门提醒，雨天路滑，驾驶员要减速慢行",
    "这座古镇吸引了大量游客，民宿预订量大幅上升",
    "农业农村部部署秋粮收获工作，确保颗粒归仓",
    "足球联赛第十轮比赛结束，主队以二比一取胜",
    "今年夏天的平均气温比往年高出一点五摄氏度",
    "消防员成功扑灭一起仓库火灾，没有造成人员伤亡",
    "新版个人所得税申报系统上线，纳税人可以在手机上办理",
    "公园里的樱花进入盛花期，周末赏花人数明显增加",
    "市场监管部门开展食品安全专项检查，抽检合格率较高",
    "这所大学新建的实验楼已经投入使用",
    "港口货物吞吐量连续三个月保持增长",
    "居民反映小区电梯经常故障，物业已经安排维修",
    "专家表示，均衡饮食和适量运动是预防慢性病的关键",
    "自来水公司提醒，下周二部分区域将临时停水八小时",
    "手机信号基站建设需要经过环境评估，辐射值远低于国家标准",
    "博物馆新展览展出了两百多件出土文物",
    "The city council approved a new budget for road repairs on Tuesday",
    "Researchers published a study on sleep and memory in older adults",
    "The central bank kept interest rates unchanged this quarter",
    "Local hospitals report that flu cases have started to decline",
    "The government launched a new website for tax filing",
    "Doctors recommend regular exercise and a balanced diet",
    "A new vaccine trial enrolled three thousand volunteers last month",
    "The football club signed a young striker from a rival team",
    "Tech companies are investing heavily in data centres this year",
    "The museum will reopen after a two-year renovation",
    "Patients can now book appointments online through the hospital app",
    "Weather forecasters expect heavy snow in the northern provinces",
    "The microchip shortage has eased, according to industry analysts",
    "Location services on your phone can be switched off in the settings",
    "今天天气很好，我们去公园散步吧",
    "请帮我写一首关于秋天的诗",
    "帮我把这段话翻译成英文：我喜欢喝茶",
    "如何用Python读取一个CSV文件？",
    "给我推荐几本适合初学者的历史书",
    "写一篇五百字的作文，题目是我的妈妈",
    "本市气象局发布高温预警，提醒市民减少户外活动并多喝水",
    "多名居民反映小区附近施工噪音过大，街道办已介入协调",
]
#: True reports and refutations on the claims' own topics, sharing many of their words.
SAME_TOPIC = [
    "5G基站的电磁辐射远低于国家标准，不会对周边居民健康造成影响",
    "小区附近的5G基站已通过环境评估，居民无需担心",
    "板蓝根不能预防新冠病毒感染，请勿盲目囤积药品",
    "专家建议每天适量运动，连续坚持一个月效果明显",
    "本市自来水厂出水水质检测合格，市民可以放心饮用自来水",
    "市民近期请注意节约用水，自来水厂正在进行设备检修",
    "碘盐不能防止核辐射，过量摄入碘反而有害健康",
    "各大超市的食盐供应充足，市民不必抢购",
    "The new vaccine does not contain microchips and cannot track your location",
    "Doctors say the government vaccine programme is safe for patients",
]


def notice(n: int) -> RefutationNotice:
    return RefutationNotice(f"n{n}", f"Refutation {n}", f"https://example.org/refutations/{n}", "2025-01-02")


def entries() -> list[RumorEntry]:
    return [RumorEntry(cid, claim, notice(n)) for n, (cid, (claim, _)) in enumerate(CLAIMS.items())]


@pytest.fixture(scope="module")
def index() -> RumorIndex:
    return RumorIndex.build(entries())


def language(cid: str) -> str:
    return "en" if cid == "chip" else "zh"


def paraphrases(cid: str) -> list[str]:
    """72 rewordings of a claim: clauses reordered or not, 0-2 synonyms, no filler, a filler sentence
    before or a filler word inside, simplified or traditional (full-width for English), punctuation
    kept or changed (English: upper case and ellipses)."""
    claim, synonyms = CLAIMS[cid]
    lang = language(cid)
    separator = "，" if lang == "zh" else ", "
    found = []
    for reorder, swaps, filler, script, punctuation in itertools.product(
        (False, True), (0, 1, 2), ("none", "prefix", "inline"), (False, True), (False, True)
    ):
        text = claim
        for word, synonym in synonyms[:swaps]:
            text = text.replace(word, synonym)
        clauses = text.split(separator)
        if reorder:
            clauses.reverse()
        if filler == "inline":
            clauses[0] = INLINE[lang] + clauses[0]
        text = separator.join(clauses)
        if filler == "prefix":
            text = PREFIX[lang] + text
        if punctuation:
            text = text.replace("，", "！ ") if lang == "zh" else text.replace(", ", "... ").upper()
        if script:
            text = (
                S2T.convert(text)
                if lang == "zh"
                else "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
            )
        found.append(text)
    return found


def ids(index: RumorIndex, text: str) -> list[str]:
    return [m.entry_id for m in index.match(text)]


@pytest.mark.parametrize("cid", list(CLAIMS))
def test_every_paraphrase_matches_its_claim_only(index: RumorIndex, cid: str) -> None:
    variants = paraphrases(cid)
    assert len(set(variants)) == 72
    for text in variants:
        matches = index.match(text)
        assert [m.entry_id for m in matches] == [cid], text
        (m,) = matches
        assert index.threshold <= m.similarity <= 1
        # The whole text is one of the passages compared, so the best passage is at least as similar.
        assert m.similarity >= round(index.similarity(CLAIMS[cid][0], text), 6) - 1e-9


@pytest.mark.parametrize("text", UNRELATED + SAME_TOPIC)
def test_unrelated_and_same_topic_sentences_do_not_match(index: RumorIndex, text: str) -> None:
    assert index.match(text) == []


def test_enough_cases() -> None:
    assert len(UNRELATED) >= 50
    assert sum(len(paraphrases(cid)) for cid in CLAIMS) >= 20


def test_unrelated_news_as_one_long_text_does_not_match(index: RumorIndex) -> None:
    # (Same-topic sentences are left out here: two adjacent ones that together restate most of a
    # claim's words, one negating it, can reach the threshold; a person reviews rumor matches.)
    rng = random.Random(5)
    text = "。".join(rng.choice(UNRELATED) for _ in range(3000))
    assert index.match(text) == []
    assert index.match(text.replace("。", "").replace("，", "")) == []  # no punctuation at all


@pytest.mark.parametrize("punctuated", [True, False])
def test_claim_inside_a_long_text_is_found_and_located(index: RumorIndex, punctuated: bool) -> None:
    rng = random.Random(11 if punctuated else 12)
    for cid in CLAIMS:
        for text in paraphrases(cid)[::9]:
            before = "。".join(rng.sample(UNRELATED, 12)) + "。"
            after = "。" + "。".join(rng.sample(UNRELATED, 12))
            if not punctuated:
                before, after = (s.replace("。", "").replace("，", "") for s in (before, after))
            full = before + text + after
            matches = [m for m in index.match(full) if m.entry_id == cid]
            assert len(matches) == 1, (full, matches)
            (m,) = matches
            start, end = len(before), len(before) + len(text)
            # Within the paraphrase, up to a piece of the text around it where no punctuation
            # separates them; and covering most of it (a filler word or a swapped last word aside).
            slack = 12
            assert start - slack <= m.start < m.end <= end + slack, (full[m.start : m.end], text)
            overlap = min(m.end, end) - max(m.start, start)
            assert overlap >= 0.7 * len(text), (full[m.start : m.end], text)
            assert len(index.match(full)) == 1


def test_located_exactly_between_sentences(index: RumorIndex) -> None:
    claim = CLAIMS["tapwater"][0]
    text = "今天天气很好。" + claim + "。明天见。"
    (m,) = index.match(text)
    assert text[m.start : m.end] == claim
    assert m.similarity == 1.0


def test_offsets_count_code_points_of_the_original(index: RumorIndex) -> None:
    claim = CLAIMS["salt"][0]
    head = "😀🎉 ＡＢＣ e\u0301 紧急！！ "  # astral emoji, full-width letters, a combining accent
    text = head + S2T.convert(claim) + " 😀"
    (m,) = index.match(text)
    assert m.start == len(head)
    assert text[m.start : m.end] == S2T.convert(claim)


def test_each_occurrence_and_each_claim_is_reported(index: RumorIndex) -> None:
    a, b = paraphrases("5g")[5], paraphrases("salt")[30]
    text = f"{a}。今天天气很好，我们去公园散步吧。{b}。请帮我写一首关于秋天的诗。{a}"
    matches = index.match(text)
    assert [m.entry_id for m in matches] == ["5g", "salt", "5g"]
    assert [m.start for m in matches] == sorted(m.start for m in matches)
    first, _, last = matches
    assert first.end <= last.start


def test_match_links_the_notice_and_category() -> None:
    refutation = RefutationNotice("gov-1", "辟谣", "https://example.org/1", "2024-12-31")
    index = RumorIndex.build([RumorEntry("x", CLAIMS["salt"][0], refutation, RiskCategory.A5_1)])
    (m,) = index.match(CLAIMS["salt"][0])
    assert m == RumorMatch(
        "x", 1.0, 0, len(CLAIMS["salt"][0]), refutation, RiskCategory.A5_1, CLAIMS["salt"][0]
    )
    assert RumorEntry("y", "某地发生了一件事情", refutation).category is RiskCategory.A1_7


def test_threshold_is_configurable(index: RumorIndex) -> None:
    text = paraphrases("tapwater")[-1]  # reordered, two synonyms, inline filler, traditional
    similarity = index.match(text)[0].similarity
    assert ids(RumorIndex.build(entries(), threshold=similarity - 0.01), text) == ["tapwater"]
    assert ids(RumorIndex.build(entries(), threshold=similarity + 0.01), text) == []
    assert RumorIndex.build(entries(), threshold=0.9).threshold == 0.9


def test_lsh_parameters_reach_the_recall() -> None:
    for threshold in (0.3, 0.4, 0.5, 0.7, 0.9):
        bands, rows = RumorIndex.build(entries(), threshold=threshold).lsh_bands
        assert bands * rows <= 128
        assert 1 - (1 - threshold**rows) ** bands >= LSH_RECALL


@pytest.mark.parametrize("shingle", [1, 2, 4])
def test_other_shingle_sizes_still_find_the_claim(shingle: int) -> None:
    index = RumorIndex.build(entries(), shingle=shingle)
    claim = CLAIMS["banlangen"][0]
    assert ids(index, "据说：" + S2T.convert(claim) + "。今天天气很好。") == ["banlangen"]


def test_bytes_input_and_bad_text(index: RumorIndex) -> None:
    claim = CLAIMS["5g"][0]
    assert ids(index, claim.encode()) == ["5g"]
    with pytest.raises(UsageError, match="UTF-8"):
        index.match(claim.encode() + b"\xff")
    with pytest.raises(UsageError, match="surrogate"):
        index.match(claim + "\ud800")
    small = RumorIndex.build(entries(), max_input_bytes=100)
    with pytest.raises(UsageError, match="limit"):
        small.match("好" * 40)


def test_empty_index_and_short_texts(index: RumorIndex) -> None:
    assert RumorIndex.build([]).match(CLAIMS["5g"][0]) == []
    assert len(RumorIndex.build([])) == 0
    assert index.match("") == []
    assert index.match("5G") == []
    assert index.match("！！！。。。") == []


def test_build_validation() -> None:
    with pytest.raises(UsageError, match="duplicate"):
        RumorIndex.build([*entries(), entries()[0]])
    with pytest.raises(UsageError, match="at least"):
        RumorIndex.build([RumorEntry("short", "谣言！", notice(1))])
    for bad in ({"threshold": 0}, {"threshold": 1.5}, {"shingle": 0}, {"shingle": 9}, {"num_perm": 4}):
        with pytest.raises(UsageError):
            RumorIndex.build(entries(), **bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        RumorEntry("", "claim", notice(1))
    with pytest.raises(UsageError):
        RumorEntry("x", "  ", notice(1))
    with pytest.raises(UsageError):
        RumorEntry("x", "claim", None)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        RefutationNotice("", "t", "u", "2025-01-01")


def test_index_and_entries_are_immutable(index: RumorIndex) -> None:
    with pytest.raises(AttributeError):
        index._threshold = 0.1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del index._entries
    with pytest.raises(dataclasses.FrozenInstanceError):
        index.entries[0].claim = "x"  # type: ignore[misc]
    assert index.entry("salt").claim == CLAIMS["salt"][0]
    assert len(index) == len(CLAIMS)


def test_repeated_filler_does_not_hide_a_claim(index: RumorIndex) -> None:
    claim = CLAIMS["tapwater"][0]
    text = "哈" * 5000 + claim + "哈" * 5000
    (m,) = index.match(text)
    assert m.entry_id == "tapwater" and text[m.start : m.end] == claim


def test_many_claims_in_a_large_text(index: RumorIndex) -> None:
    # Each paraphrase followed by an unrelated sentence: two reordered paraphrases of one claim side
    # by side also hold the claim in its own order across their border (the second half of one and
    # the first half of the next), which is then rightly reported as a third passage.
    rng = random.Random(3)
    pieces = []
    expected = []
    for _ in range(300):
        if rng.random() < 0.3:
            cid = rng.choice(list(CLAIMS))
            pieces.append(rng.choice(paraphrases(cid)))
            expected.append(cid)
        pieces.append(rng.choice(UNRELATED))
    found = ids(index, "。".join(pieces))
    assert found == expected
