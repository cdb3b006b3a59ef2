"""The numbers of the TMCDR paper's Table 1 (Zhu et al., SIGIR 2021), for the report's comparison section.

Scenarios (paper numbering): 1 Amazon apps_for_android -> video_games, 2 home_and_kitchen ->
tools_and_home_improvement, 3 movies_and_tv -> cds_and_vinyl, 4 books -> movies_and_tv, 5 Douban movie -> music,
6 Douban music -> book. The paper's BPR / ListRank-MF / CML baselines are trained on the MERGED domains: they
are this plugin's ``BPR_merged`` / ``ListRankMF_merged`` / ``CML_merged`` (this plugin's ``BPR`` is target-only).
"""

PAPER_SCENARIOS = {
    1: 'Amazon apps_for_android -> video_games',
    2: 'Amazon home_and_kitchen -> tools_and_home_improvement',
    3: 'Amazon movies_and_tv -> cds_and_vinyl',
    4: 'Amazon books -> movies_and_tv',
    5: 'Douban movie -> music',
    6: 'Douban music -> book',
}

# Benchmark scenario label -> paper scenario number (only scenarios built from the same source data).
SCENARIO_TO_PAPER = {
    'douban_music_book': 6,
    'douban_movie_music': 5,
}

# model -> {'uauc': [scenario 1..6], 'ndcg@10': [...] (only for the two models the paper's text reports)}
PAPER_TABLE1 = {
    'EMCDR_MF': {'uauc': [.7271, .6923, .8011, .7936, .8438, .8297],
                 'ndcg@10': [.2103, .1985, .3055, .2670, .3322, .3702]},
    'TMCDR_MF': {'uauc': [.7501, .7253, .8282, .8056, .8589, .8442],
                 'ndcg@10': [.2246, .2427, .3334, .2775, .3483, .3778]},
    'CMF': {'uauc': [.6490, .6996, .7769, .7295, .8465, .8339]},
    'BPR_merged': {'uauc': [.7226, .7160, .7737, .7199, .8108, .8138]},
    'ListRankMF_merged': {'uauc': [.6648, .7232, .7640, .7409, .8136, .8191]},
    'CML_merged': {'uauc': [.6470, .6986, .8191, .7857, .8466, .8405]},
    'CST': {'uauc': [.7240, .7124, .7995, .7842, .8524, .8406]},
    'SSCDR': {'uauc': [.7245, .6745, .7956, .6545, .8144, .8317]},
    'EMCDR_MFori': {'uauc': [.6942, .6511, .7273, .7307, .7307, .7627]},
}


def paper_value(model, metric, paper_scenario):
    values = PAPER_TABLE1.get(model, {}).get(metric)
    return None if values is None else values[paper_scenario - 1]


def paper_gain_range(metric='uauc', better='TMCDR_MF', worse='EMCDR_MF'):
    """(min, max) over the paper's six scenarios of ``better - worse``."""
    gains = [b - w for b, w in zip(PAPER_TABLE1[better][metric], PAPER_TABLE1[worse][metric])]
    return min(gains), max(gains)
