from dsrl_ray.cli import main

main()
