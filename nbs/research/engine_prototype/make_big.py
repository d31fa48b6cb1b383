"Write big_<n>.csv: n rows resampled (with replacement, seed 0) from train.csv, Segmentation dropped, IDs made unique."
import sys, numpy as np, pyarrow as pa, pyarrow.csv as pacsv, pyarrow.compute as pc
n = int(sys.argv[1]) if len(sys.argv) > 1 else 10**6
src = '/work/main/dataset/train.csv'
header = open(src).readline().strip().split(',')
t = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                   strings_can_be_null=False)).drop_columns(['Segmentation'])
idx = np.random.default_rng(0).integers(0, t.num_rows, n)
t = t.take(pa.array(idx)).set_column(0, 'ID', pa.array((np.arange(n) + 10_000_000).astype(str)))
with open(f'big_{n}.csv', 'wb') as f:
    f.write((','.join(t.column_names) + '\n').encode())
    pacsv.write_csv(t, f, pacsv.WriteOptions(include_header=False, quoting_style='none'))
