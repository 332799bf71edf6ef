import { useEffect, useRef } from 'preact/hooks';
import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  DoughnutController,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';

Chart.register(BarController, BarElement, LineController, LineElement, PointElement, DoughnutController, ArcElement, CategoryScale, LinearScale, Tooltip, Legend);
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
Chart.defaults.color = '#475467';
Chart.defaults.animation = false;

export const palette = ['#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#64748b', '#0f766e', '#a16207'];

export interface Dataset {
  label: string;
  data: number[];
}

interface Props {
  type: 'bar' | 'line' | 'doughnut';
  labels: string[];
  datasets: Dataset[];
  stacked?: boolean;
  /** What the chart shows, for screen readers (the table under it has the numbers). */
  label: string;
  format?: (v: number) => string;
  height?: number;
}

export function ChartView({ type, labels, datasets, stacked, label, format, height = 260 }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart | null>(null);

  useEffect(() => {
    if (!canvas.current) return;
    const fmt = format ?? ((v: number) => String(v));
    const doughnut = type === 'doughnut';
    const cfg: ChartConfiguration = {
      type,
      data: {
        labels,
        datasets: datasets.map((d, i) => ({
          label: d.label,
          data: d.data,
          backgroundColor: doughnut ? d.data.map((_, j) => palette[j % palette.length]) : palette[i % palette.length],
          borderColor: doughnut ? '#fff' : palette[i % palette.length],
          borderWidth: type === 'line' ? 2 : doughnut ? 2 : 0,
          pointRadius: type === 'line' ? 2 : undefined,
          tension: 0.2,
          maxBarThickness: 48,
        })) as any,
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          legend: { display: doughnut || datasets.length > 1, position: doughnut ? 'right' : 'bottom' },
          tooltip: {
            callbacks: {
              label: (item: any) => `${doughnut ? item.label : item.dataset.label}: ${fmt(Number(item.raw))}`,
            },
          },
        },
        scales: doughnut
          ? {}
          : {
              x: { stacked: !!stacked, grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
              y: { stacked: !!stacked, beginAtZero: true, ticks: { callback: (v: any) => fmt(Number(v)) } },
            },
      } as any,
    };
    if (chart.current) chart.current.destroy();
    chart.current = new Chart(canvas.current, cfg);
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
  }, [type, JSON.stringify(labels), JSON.stringify(datasets), stacked]);

  return (
    <div class="chart" style={{ height: `${height}px` }}>
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}
