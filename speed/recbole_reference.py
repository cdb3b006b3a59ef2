"""RecBole's own BPR on the plugin's target-domain split: the reference of figures 3 and 4.

The target domain's atomic files of the prepared scenario (``train`` = warm users' rows, ``valid`` /
``test`` = cold users' rows) are copied into a plain single-domain RecBole dataset and loaded with
``benchmark_filename: [train, valid, test]``: same rows, same users and items, same batch size, embedding
size, negatives per positive (uniform, ``neg_sampling``), learner, metrics and evaluation batch size as
the plugin's pipeline.
"""

import shutil
from pathlib import Path


class RecBoleBPR:
    def __init__(self, plugin_config, workdir):
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.model.general_recommender import BPR
        from recbole.trainer import Trainer
        from recbole.utils import init_seed

        target = plugin_config['target_domain']
        source_dir = Path(target['data_path'])
        name = 'bench_bpr_target'
        data_dir = Path(workdir) / 'recbole_bpr'
        (data_dir / name).mkdir(parents=True, exist_ok=True)
        for part in target['benchmark_filename']:
            shutil.copyfile(source_dir / f"{target['dataset']}.{part}.inter", data_dir / name / f'{name}.{part}.inter')
        same = {key: plugin_config[key] for key in (
            'seed', 'embedding_size', 'train_batch_size', 'eval_batch_size', 'neg_sampling', 'learner',
            'learning_rate', 'metrics', 'topk', 'valid_metric', 'eval_args', 'device', 'reproducibility')}
        config_dict = {**same, 'data_path': str(data_dir), 'benchmark_filename': list(target['benchmark_filename']),
                       'USER_ID_FIELD': 'user_id', 'ITEM_ID_FIELD': 'item_id', 'load_col': {'inter': ['user_id', 'item_id']},
                       'state': 'WARNING', 'show_progress': False, 'checkpoint_dir': str(data_dir / 'saved')}
        self.config = Config(model='BPR', dataset=name, config_dict=config_dict)
        init_seed(self.config['seed'], self.config['reproducibility'])
        self.dataset = create_dataset(self.config)
        self.train_data, self.valid_data, self.test_data = data_preparation(self.config, self.dataset)
        init_seed(self.config['seed'], self.config['reproducibility'])
        self.model = BPR(self.config, self.train_data.dataset).to(self.config['device'])
        self.trainer = Trainer(self.config, self.model)
