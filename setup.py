from pathlib import Path

from setuptools import find_packages, setup

requirements = [line.split('#')[0].strip() for line in Path(__file__).with_name('requirements.txt').read_text().splitlines()]
setup(
    name='dfdnet',
    version='0.1.0',
    description='Blind face restoration with deep multi-scale component dictionaries (DFDNet, ECCV 2020)',
    # the code; the shipped model and the released weights have their own terms (NOTICE.md)
    license='MIT',
    license_files=['LICENSE', 'NOTICE.md'],
    classifiers=['License :: OSI Approved :: MIT License', 'Programming Language :: Python :: 3'],
    packages=find_packages(include=['dfdnet', 'dfdnet.*']),
    # the shipped default model travels with the package (found through it: dfdnet.shipped_model_dir())
    package_data={'dfdnet': ['data/*.npz', 'pretrained/default/*.pth', 'pretrained/default/*.json',
                             'pretrained/default/*.md', 'pretrained/default/dictionaries/*',
                             'app/static/*']},
    python_requires='>=3.10',
    install_requires=[r for r in requirements if r and not r.startswith(('pytest', 'playwright'))],
    extras_require={'test': [r for r in requirements if r.startswith(('pytest', 'playwright'))]},
    entry_points={'console_scripts': [
        'dfdnet-restore=dfdnet.cli.restore:main',
        'dfdnet-build-dictionary=dfdnet.cli.build_dictionary:main',
        'dfdnet-train=dfdnet.cli.train:main',
        'dfdnet-align-faces=dfdnet.cli.align_faces:main',
        'dfdnet-make-testset=dfdnet.cli.make_testset:main',
        'dfdnet-evaluate=dfdnet.cli.evaluate:main',
        'dfdnet-validate=dfdnet.cli.validate:main',
        'dfdnet-export-model=dfdnet.cli.export_model:main',
        'dfdnet-make-figure=dfdnet.cli.make_figure:main',
        'dfdnet-app=dfdnet.app.cli:main',
    ]},
)
